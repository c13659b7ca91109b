"""Vira STT (Persian): the enhanced recording is uploaded as a 16 kHz WAV (multipart `file`)."""

from __future__ import annotations

import time
from typing import Any

from switchboard.speech.audio import Audio, resample, wav_bytes
from switchboard.speech.base import ProviderFailure, Transcript
from switchboard.speech.http import HttpClient, body_json
from switchboard.speech.vira import PROVIDER, auth_headers, check_body, classify_vira


def _text_of(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("text", "transcript", "result"):
            if isinstance(body.get(key), str):
                return body[key]
        for key in ("data", "result"):
            if isinstance(body.get(key), dict):
                return _text_of(body[key])
    return None


class ViraSTT:
    name = PROVIDER

    def __init__(self, *, url: str, token: str, timeout: float = 30.0, attempts: int = 3,
                 backoff: float = 0.5) -> None:
        if not url:
            raise ValueError("VIRA_STT_URL is not set")
        self.url = url
        self.token = token
        self.http = HttpClient(self.name, timeout=timeout, attempts=attempts, backoff=backoff,
                               classify=classify_vira)

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None) -> Transcript:
        started = time.perf_counter()
        data = {"language": language or "fa"}
        if hotwords:
            data["hotwords"] = ",".join(hotwords)
        resp = await self.http.request(
            "POST", self.url, headers=auth_headers(self.token), data=data,
            files={"file": ("audio.wav", wav_bytes(resample(audio, 16000)), "audio/wav")})
        body = body_json(resp)
        check_body(body)
        text = _text_of(body)
        if text is None:
            raise ProviderFailure(self.name, f"unexpected response: {resp.text[:200]}")
        return Transcript(text=text.strip(), language=language or "fa", confidence=None,
                          latency=time.perf_counter() - started)
