from __future__ import annotations

import pytest

from switchboard.speech import audio as A
from switchboard.speech.base import STT, TTS, ProviderFailure
from switchboard.speech.stt.openai import OpenAISTT
from switchboard.speech.tts.openai import OpenAITTS
from switchboard.telephony.call import Audio

from .fakes.openai import API_KEY, FakeOpenAI
from .fakes.server import serve


async def test_transcription_multipart(speech_clip: Audio) -> None:
    fake = FakeOpenAI(transcript=" yes I'm interested ")
    async with serve(fake.app()) as url:
        stt = OpenAISTT(base_url=url + "/v1", api_key=API_KEY, model="whisper-1")
        assert isinstance(stt, STT)
        result = await stt.transcribe(A.resample(speech_clip, 8000), language="en", hotwords=["Acme", "loan"])
    assert result.text == "yes I'm interested" and result.language == "en" and result.latency > 0
    req = fake.requests[0]
    assert req["model"] == "whisper-1" and req["language"] == "en" and req["prompt"] == "Acme, loan"
    assert req["rate"] == 16000 and req["frames"] == pytest.approx(speech_clip.duration * 16000, abs=2)


async def test_rate_limit_is_retried_then_succeeds(speech_clip: Audio) -> None:
    fake = FakeOpenAI(fail_next=[(429, "requests", "rate_limit_exceeded"), (503, "server_error", None)])
    async with serve(fake.app()) as url:
        stt = OpenAISTT(base_url=url + "/v1", api_key=API_KEY, backoff=0.01)
        result = await stt.transcribe(speech_clip)
    assert result.text == "yes I'm interested" and not fake.fail_next


async def test_quota_and_auth_fail_without_retry(speech_clip: Audio) -> None:
    fake = FakeOpenAI(fail_next=[(429, "insufficient_quota", "insufficient_quota")])
    async with serve(fake.app()) as url:
        stt = OpenAISTT(base_url=url + "/v1", api_key=API_KEY, backoff=0.01)
        with pytest.raises(ProviderFailure, match="insufficient_quota") as info:
            await stt.transcribe(speech_clip)
        assert not info.value.retryable
        bad = OpenAISTT(base_url=url + "/v1", api_key="wrong", backoff=0.01)
        with pytest.raises(ProviderFailure, match="invalid_api_key"):
            await bad.transcribe(speech_clip)


async def test_persistent_5xx_gives_up_as_retryable_failure(speech_clip: Audio) -> None:
    fake = FakeOpenAI(fail_next=[(500, "server_error", None)] * 5)
    async with serve(fake.app()) as url:
        stt = OpenAISTT(base_url=url + "/v1", api_key=API_KEY, attempts=3, backoff=0.01)
        with pytest.raises(ProviderFailure, match="3 attempts") as info:
            await stt.transcribe(speech_clip)
    assert info.value.retryable and len(fake.fail_next) == 2


async def test_unreachable_server_is_a_provider_failure(speech_clip: Audio) -> None:
    stt = OpenAISTT(base_url="http://127.0.0.1:9/v1", api_key=API_KEY, attempts=2, backoff=0.01)
    with pytest.raises(ProviderFailure, match="ConnectError"):
        await stt.transcribe(speech_clip)


async def test_speech_returns_24k_pcm() -> None:
    fake = FakeOpenAI()
    async with serve(fake.app()) as url:
        tts = OpenAITTS(base_url=url + "/v1", api_key=API_KEY, model="tts-1", voice="nova")
        assert isinstance(tts, TTS)
        audio = await tts.synthesize("Hello there")
        chunks = [c async for c in tts.stream("One. Two.")]
    assert audio.sample_rate == 24000 and audio.duration == pytest.approx(0.55, abs=0.01)
    assert fake.requests[0] == {"model": "tts-1", "input": "Hello there", "voice": "nova",
                                "response_format": "pcm"}
    assert len(chunks) == 2
