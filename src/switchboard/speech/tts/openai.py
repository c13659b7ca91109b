"""OpenAI-compatible speech (`POST {base}/audio/speech`), asking for raw 24 kHz PCM16."""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchboard.speech.audio import Audio, read_wav_bytes
from switchboard.speech.base import ProviderFailure
from switchboard.speech.http import HttpClient
from switchboard.speech.stt.openai import classify_openai
from switchboard.speech.tts.text import split_sentences

OPENAI_PCM_RATE = 24000


class OpenAITTS:
    name = "openai"

    def __init__(self, *, base_url: str, api_key: str, model: str = "tts-1", voice: str = "alloy",
                 timeout: float = 30.0, attempts: int = 3, backoff: float = 0.5) -> None:
        self.url = base_url.rstrip("/") + "/audio/speech"
        self.api_key = api_key
        self.model = model
        self.voice = voice
        self.http = HttpClient(self.name, timeout=timeout, attempts=attempts, backoff=backoff,
                               classify=lambda r: classify_openai(self.name, r))

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        resp = await self.http.request(
            "POST", self.url, headers={"Authorization": f"Bearer {self.api_key}"},
            json={"model": self.model, "input": text, "voice": voice or self.voice,
                  "response_format": "pcm"})
        content = resp.content
        if content[:4] == b"RIFF":  # some compatible servers answer WAV regardless
            return read_wav_bytes(content)
        if "json" in resp.headers.get("content-type", "") or len(content) % 2:
            raise ProviderFailure(self.name, f"unexpected speech response: {content[:200]!r}")
        return Audio(content, OPENAI_PCM_RATE)

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence, voice=voice, language=language)
