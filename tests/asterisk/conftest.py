"""Fixtures for the Asterisk backend tests: a running ARI double and a backend wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from switchboard.settings import Settings
from switchboard.telephony.asterisk.backend import AsteriskBackend
from tests.asterisk.double import AriDouble, ari_settings

if TYPE_CHECKING:
    from switchboard.voice.runtime import VoiceRuntime

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


def voice_for(settings: Settings, synthesize) -> "VoiceRuntime":  # type: ignore[no-untyped-def]
    """The voice layer for streamed ARI turns, as `app.build_voice` makes it, with `synthesize`
    (text, language, voice) -> Audio as the TTS."""
    from switchboard.speech.registry import build_vad_provider
    from switchboard.voice.pacing import Pacer
    from switchboard.voice.prompts import PromptLibrary
    from switchboard.voice.recordings import RecordingKeeper
    from switchboard.voice.runtime import VoiceRuntime

    async def speech(text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
        yield await synthesize(text, language, voice)

    return VoiceRuntime(vad=build_vad_provider(settings), pacer=Pacer(lead=settings.voice_jitter_ms / 1000),
                        prompts=PromptLibrary(settings.prompts_wav_dir), speech=speech,
                        recordings=RecordingKeeper(settings.recordings_dir))
