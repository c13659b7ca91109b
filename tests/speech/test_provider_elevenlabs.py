from __future__ import annotations

import logging

import pytest

from switchboard.speech.base import ProviderFailure
from switchboard.speech.tts.elevenlabs import ElevenLabsTTS

from .fakes.elevenlabs import API_KEY, VOICE, FakeElevenLabs
from .fakes.server import serve


def client(url: str, **kw: object) -> ElevenLabsTTS:
    return ElevenLabsTTS(api_key=str(kw.pop("api_key", API_KEY)), voice_id=str(kw.pop("voice_id", VOICE)),
                         base_url=url, model_id="eleven_flash_v2_5", backoff=0.01, **kw)  # type: ignore[arg-type]


async def test_rest_synthesis() -> None:
    fake = FakeElevenLabs()
    async with serve(fake.app()) as url:
        audio = await client(url).synthesize("Hello world")
    assert audio.sample_rate == 16000 and audio.duration == pytest.approx(0.44, abs=0.01)
    assert fake.http_requests == [{"body": {"text": "Hello world", "model_id": "eleven_flash_v2_5",
                                                "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}},
                                   "output_format": "pcm_16000"}]


async def test_rest_errors() -> None:
    fake = FakeElevenLabs(quota_exceeded=True)
    async with serve(fake.app()) as url:
        with pytest.raises(ProviderFailure, match="quota_exceeded"):
            await client(url).synthesize("Hello")
        with pytest.raises(ProviderFailure, match="invalid_api_key"):
            await client(url, api_key="nope").synthesize("Hello")
        fake.quota_exceeded = False
        fake.http_fail_next = [429, 500]
        assert (await client(url).synthesize("Hi")).duration > 0  # retried twice
        with pytest.raises(ProviderFailure, match="voice_not_found"):
            await client(url, voice_id="other").synthesize("Hello")


async def test_websocket_streaming() -> None:
    fake = FakeElevenLabs()
    async with serve(fake.app()) as url:
        tts = client(url, use_ws=True)
        chunks = [c async for c in tts.stream("First sentence. Second sentence.")]
        whole = await tts.synthesize("Just one.")
    assert len(chunks) == 2 and all(c.sample_rate == 16000 for c in chunks)
    assert whole.duration == pytest.approx(0.04 * len("Just one."), abs=0.01)
    assert not fake.http_requests  # all over the WebSocket
    first = fake.ws_messages[0]
    assert first["text"] == " " and first["xi_api_key"] == API_KEY and "voice_settings" in first
    texts = [m["text"] for m in fake.ws_messages[1:4]]
    assert texts == ["First sentence. ", "Second sentence. ", ""]
    assert fake.ws_messages[1]["flush"] is True


@pytest.mark.parametrize("failure", ["refuse", "error_message"])
async def test_websocket_failure_falls_back_to_http(failure: str, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeElevenLabs(ws_fail=failure)
    async with serve(fake.app()) as url:
        with caplog.at_level(logging.WARNING):
            chunks = [c async for c in client(url, use_ws=True).stream("One. Two.")]
    assert len(chunks) == 2 and len(fake.http_requests) == 2
    assert "falling back to HTTP" in caplog.text
