"""Asterisk ARI backend: bridge-centric call control over the Asterisk REST Interface.

`AsteriskBackend.from_settings(settings)` is the entry point; see docs/asterisk.md.
"""

from switchboard.telephony.asterisk.backend import AsteriskBackend, OriginateResult
from switchboard.telephony.asterisk.client import AriClient, AriError
from switchboard.telephony.asterisk.config import AriConfig
from switchboard.telephony.asterisk.media import AriMediaPort
from switchboard.telephony.asterisk.session import AriCall

__all__ = ["AriCall", "AriClient", "AriConfig", "AriError", "AriMediaPort", "AsteriskBackend", "OriginateResult"]
