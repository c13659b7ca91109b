"""Fixtures for the Asterisk backend tests: a running ARI double and a backend wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.settings import Settings
from switchboard.telephony.asterisk.backend import AsteriskBackend
from tests.asterisk.double import AriDouble, ari_settings

APP = "switchboard"
SCALE = 0.05  # virtual seconds -> real seconds (a 5.5 s Wait takes 0.275 s)


@pytest.fixture
async def ari(tmp_path: Path) -> AsyncIterator[AriDouble]:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    async with AriDouble(scale=SCALE, sounds_dir=str(sounds)) as double:
        yield double


def settings_for(double: AriDouble, tmp_path: Path, **overrides: object) -> Settings:
    return ari_settings(double, tmp_path, app=APP, **overrides)


@pytest.fixture
async def backend(ari: AriDouble, tmp_path: Path) -> AsyncIterator[AsteriskBackend]:
    b = AsteriskBackend.from_settings(settings_for(ari, tmp_path))
    await b.start()
    await ari.wait_ws(APP)
    yield b
    await b.close()
