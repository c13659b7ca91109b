"""OpenAI-compatible transcription (`POST {base}/audio/transcriptions`, multipart).

Works with OpenAI and any server speaking the same API (self-hosted faster-whisper servers,
gateways). Hotwords go in `prompt`, the documented way to bias spelling.
"""

from __future__ import annotations

import time

import httpx

from switchboard.speech.audio import Audio, resample, wav_bytes
from switchboard.speech.base import ProviderFailure, Transcript
from switchboard.speech.http import RETRY, HttpClient, body_json


def classify_openai(provider: str, resp: httpx.Response) -> Exception | str | None:
    """OpenAI error bodies are `{"error": {"message", "type", "code"}}`; `insufficient_quota`
    arrives as a 429 but is a billing problem, not a rate limit."""
    if resp.status_code < 400:
        return None
    body = body_json(resp)
    err = body.get("error") if isinstance(body, dict) else None
    code = str((err or {}).get("code") or (err or {}).get("type") or "") if isinstance(err, dict) else ""
    message = str(err.get("message", "")) if isinstance(err, dict) else resp.text[:200]
    if code in ("insufficient_quota", "billing_hard_limit_reached", "invalid_api_key"):
        return ProviderFailure(provider, f"{code}: {message}")
    if resp.status_code == 429 or resp.status_code >= 500:
        return RETRY
    return ProviderFailure(provider, f"HTTP {resp.status_code} {code}: {message}".strip())


class OpenAISTT:
    name = "openai"

    def __init__(self, *, base_url: str, api_key: str, model: str = "whisper-1", timeout: float = 30.0,
                 attempts: int = 3, backoff: float = 0.5) -> None:
        self.url = base_url.rstrip("/") + "/audio/transcriptions"
        self.api_key = api_key
        self.model = model
        self.http = HttpClient(self.name, timeout=timeout, attempts=attempts, backoff=backoff,
                               classify=lambda r: classify_openai(self.name, r))

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None) -> Transcript:
        started = time.perf_counter()
        data: dict[str, str] = {"model": self.model, "response_format": "json", "temperature": "0"}
        if language:
            data["language"] = language
        if hotwords:
            data["prompt"] = ", ".join(hotwords)
        wav = wav_bytes(resample(audio, 16000))
        resp = await self.http.request(
            "POST", self.url, data=data, files={"file": ("audio.wav", wav, "audio/wav")},
            headers={"Authorization": f"Bearer {self.api_key}"})
        body = body_json(resp)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ProviderFailure(self.name, f"unexpected transcription response: {resp.text[:200]}")
        return Transcript(text=body["text"].strip(), language=body.get("language") or language,
                          confidence=None, latency=time.perf_counter() - started)
