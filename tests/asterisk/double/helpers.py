"""Helpers for any test that runs calls over the ARI double (flow tests included)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from switchboard.settings import Settings
from tests.asterisk.double.server import AriDouble


def ari_settings(double: AriDouble, tmp_path: Path, *, app: str = "switchboard", **overrides: object) -> Settings:
    """Settings pointing the Asterisk backend at `double` (sounds and recordings under tmp_path)."""
    sounds = Path(double.sim.sounds_dir) if double.sim.sounds_dir else tmp_path / "sounds"
    values: dict[str, object] = {
        "telephony_backend": "asterisk", "ari_base_url": double.base_url, "ari_ws_url": double.ws_url,
        "ari_username": double.username, "ari_password": double.password, "ari_app_name": app,
        "outbound_trunk": "trunk", "origination_timeout": 30, "operator_trunk": "operators",
        "ast_sound_dir": str(sounds), "recordings_dir": str(tmp_path / "recordings"),
        "outbound_numbers": "02150001000,02150002000",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def assert_no_leaks(double: AriDouble, timeout: float = 5.0) -> None:
    """No channel, bridge, live or stored recording left on the (simulated) Asterisk."""
    sim = double.sim
    try:
        await until(lambda: not sim.live_channels() and not sim.bridges and not sim.live and not sim.stored,
                    timeout)
    except AssertionError:
        raise AssertionError(f"leaked: channels={[c.name for c in sim.live_channels()]} "
                             f"bridges={list(sim.bridges)} live={list(sim.live)} stored={list(sim.stored)}") from None
