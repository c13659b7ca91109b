"""Vira TTS (Persian): JSON request, answered with WAV bytes or JSON carrying base64 audio."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

from switchboard.speech.audio import Audio, read_wav_bytes
from switchboard.speech.base import ProviderFailure
from switchboard.speech.http import HttpClient, body_json
from switchboard.speech.tts.text import split_sentences
from switchboard.speech.vira import PROVIDER, auth_headers, check_body, classify_vira


class ViraTTS:
    name = PROVIDER

    def __init__(self, *, url: str, token: str, voice: str = "", timeout: float = 30.0,
                 attempts: int = 3, backoff: float = 0.5) -> None:
        if not url:
            raise ValueError("VIRA_TTS_URL is not set")
        self.url = url
        self.token = token
        self.voice = voice
        self.http = HttpClient(self.name, timeout=timeout, attempts=attempts, backoff=backoff,
                               classify=classify_vira)

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        payload: dict[str, str] = {"text": text, "language": language or "fa"}
        if voice or self.voice:
            payload["speaker"] = voice or self.voice
        resp = await self.http.request("POST", self.url, headers=auth_headers(self.token), json=payload)
        if resp.content[:4] == b"RIFF":
            return read_wav_bytes(resp.content)
        body = body_json(resp)
        check_body(body)
        data = body.get("data") if isinstance(body, dict) and isinstance(body.get("data"), dict) else body
        encoded = data.get("audio") if isinstance(data, dict) else None
        if not isinstance(encoded, str):
            raise ProviderFailure(self.name, f"unexpected response: {resp.text[:200]}")
        raw = base64.b64decode(encoded)
        if raw[:4] != b"RIFF":
            raise ProviderFailure(self.name, "audio is not a WAV file")
        return read_wav_bytes(raw)

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence, voice=voice, language=language)
