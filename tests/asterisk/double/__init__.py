"""ARI test double: a programmable Asterisk simulation served over real HTTP + WebSocket."""

from tests.asterisk.double.helpers import ari_settings, assert_no_leaks, until
from tests.asterisk.double.server import AriDouble
from tests.asterisk.double.sim import AsteriskSim, Clip

__all__ = ["AriDouble", "AsteriskSim", "Clip", "ari_settings", "assert_no_leaks", "until"]
