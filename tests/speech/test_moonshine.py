"""Moonshine (English, offline, bundled weights) as an STT provider chosen per language."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.settings import Settings
from switchboard.speech.audio import Audio, through_phone_line
from switchboard.speech.base import Transcript
from switchboard.speech.registry import build_stt_by_language
from switchboard.speech.service import SpeechService

pytestmark = pytest.mark.models


async def test_moonshine_hears_a_phone_line_at_8_khz() -> None:
    from switchboard.speech.stt.moonshine import MoonshineSTT, model_path
    from switchboard.speech.tts.piper import PiperTTS

    assert Path(model_path()).is_dir()  # the weights come with the wheel: nothing is downloaded
    said = await PiperTTS().synthesize("Hello, I would like to know your opening hours, please.", language="en")
    line = through_phone_line(said)  # 8 kHz after μ-law, as a caller arrives
    stt = MoonshineSTT()
    try:
        heard = await stt.transcribe(line, language="en")
    finally:
        stt.close()
    words = heard.text.lower().replace(",", "").replace(".", "").split()
    assert words == "hello i would like to know your opening hours please".split()
    assert heard.latency > 0 and heard.language == "en"


class Fixed:
    def __init__(self, name: str) -> None:
        self.name = name
        self.heard: list[str | None] = []

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None) -> Transcript:
        self.heard.append(language)
        return Transcript(self.name, language=language, latency=0.01)


async def test_english_goes_to_its_own_provider_and_the_rest_to_the_default(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, stt_provider_en="moonshine", tts_cache_dir=tmp_path)  # type: ignore[call-arg]
    per_language = build_stt_by_language(settings)
    assert set(per_language) == {"en"} and per_language["en"].name == "moonshine"
    english, default = Fixed("moonshine"), Fixed("whisper")
    service = SpeechService(default, Fixed("tts"), stt_by_language={"en": english},  # type: ignore[arg-type]
                            enhancer=None)
    speech = Audio(b"\x10\x27" * 8000, 8000)
    assert (await service.transcribe(speech, language="en-US")).text == "moonshine"
    assert (await service.transcribe(speech, language="fa")).text == "whisper"
    assert service.stats.count == 2 and service.stats.queued_max >= 0.0


def test_an_english_only_provider_for_another_language_is_refused() -> None:
    settings = Settings(_env_file=None, stt_provider_fa="moonshine")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="STT_PROVIDER_FA=moonshine: moonshine understands English only"):
        build_stt_by_language(settings)
    with pytest.raises(ValueError, match="unknown STT_PROVIDER_AR provider 'nope'"):
        build_stt_by_language(Settings(_env_file=None, stt_provider_ar="nope"))  # type: ignore[call-arg]
