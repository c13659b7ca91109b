from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.speech import audio as A
from switchboard.speech.tts.espeak import EspeakTTS
from switchboard.telephony.call import Audio


@pytest.fixture(scope="session")
def espeak() -> EspeakTTS:
    return EspeakTTS()


@pytest.fixture(scope="session")
def speech_clip(espeak: EspeakTTS) -> Audio:
    """~1.5 s of eSpeak English at 22,050 Hz."""
    return espeak.synthesize_sync("Yes, I am interested in the offer.", language="en")


def padded(clip: Audio, rate: int, before: float, after: float) -> Audio:
    """Speech with silence around it, at `rate` (how a caller's answer sits in a recording)."""
    return A.concat([A.silence(before, rate), A.resample(clip, rate), A.silence(after, rate)], rate)


@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def whisper(shared_models_dir: Path):  # type: ignore[no-untyped-def]
    """The real Whisper base model, loaded once for the whole session."""
    from switchboard.speech.stt.whisper import WhisperSTT

    stt = WhisperSTT(shared_models_dir, size="base", max_parallel=2)
    stt.load()
    yield stt
    stt.close()


@pytest.fixture(scope="session")
def piper():  # type: ignore[no-untyped-def]
    from switchboard.speech.tts.piper import PiperTTS

    tts = PiperTTS()
    tts._get_voice()
    return tts
