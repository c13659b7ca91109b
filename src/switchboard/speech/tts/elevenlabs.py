"""ElevenLabs TTS: REST (`POST /v1/text-to-speech/{voice_id}`) and, with `ELEVENLABS_USE_WS_TTS`,
WebSocket streaming (`/v1/text-to-speech/{voice_id}/stream-input`).

Audio is requested as raw `pcm_16000` so nothing needs decoding. If the WebSocket fails before any
audio arrived, the text is synthesized over HTTP instead (logged); a failure after audio started
cannot be patched without repeating words, so it is raised.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from switchboard.speech.audio import Audio, concat
from switchboard.speech.base import ProviderFailure
from switchboard.speech.http import RETRY, HttpClient, body_json
from switchboard.speech.tts.text import split_sentences

log = logging.getLogger(__name__)

PROVIDER = "elevenlabs"
OUTPUT_FORMAT = "pcm_16000"
OUTPUT_RATE = 16000
_FAILURE_STATUSES = ("quota_exceeded", "invalid_api_key", "payment_required", "voice_not_found",
                     "detected_unusual_activity", "needs_authorization")


def classify_elevenlabs(resp: httpx.Response) -> Exception | str | None:
    """Errors are `{"detail": {"status": "quota_exceeded", "message": ...}}` (quota is a 401)."""
    if resp.status_code < 400:
        return None
    body = body_json(resp)
    detail = body.get("detail") if isinstance(body, dict) else None
    status = str(detail.get("status", "")) if isinstance(detail, dict) else ""
    message = str(detail.get("message", "")) if isinstance(detail, dict) else str(detail or resp.text[:200])
    if status in _FAILURE_STATUSES or resp.status_code in (401, 402, 403):
        return ProviderFailure(PROVIDER, f"{status or resp.status_code}: {message}")
    if resp.status_code == 429 or resp.status_code >= 500:
        return RETRY
    return ProviderFailure(PROVIDER, f"HTTP {resp.status_code} {status}: {message}".strip())


class ElevenLabsWSError(Exception):
    """The WebSocket stream failed (connection, protocol or an error message from the server)."""


class ElevenLabsTTS:
    name = PROVIDER

    def __init__(self, *, api_key: str, voice_id: str, base_url: str = "https://api.elevenlabs.io",
                 model_id: str = "eleven_multilingual_v2", use_ws: bool = False, timeout: float = 30.0,
                 attempts: int = 3, backoff: float = 0.5) -> None:
        if not voice_id:
            raise ValueError("ELEVENLABS_VOICE_ID is not set")
        self.api_key = api_key
        self.voice_id = voice_id
        self.base_url = base_url.rstrip("/")
        self.model_id = model_id
        self.use_ws = use_ws
        self.timeout = timeout
        self.http = HttpClient(self.name, timeout=timeout, attempts=attempts, backoff=backoff,
                               classify=classify_elevenlabs)

    # --- REST -------------------------------------------------------------------------------
    async def synthesize_http(self, text: str, *, voice: str | None = None,
                              language: str | None = None) -> Audio:
        url = f"{self.base_url}/v1/text-to-speech/{quote(voice or self.voice_id)}"
        resp = await self.http.request(
            "POST", url, params={"output_format": OUTPUT_FORMAT},
            headers={"xi-api-key": self.api_key, "accept": "audio/pcm"},
            json={"text": text, "model_id": self.model_id})
        if "json" in resp.headers.get("content-type", "") or len(resp.content) % 2:
            raise ProviderFailure(self.name, f"unexpected response: {resp.content[:200]!r}")
        return Audio(resp.content, OUTPUT_RATE)

    # --- WebSocket --------------------------------------------------------------------------
    def ws_url(self, voice: str | None) -> str:
        base = self.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = urlencode({"model_id": self.model_id, "output_format": OUTPUT_FORMAT})
        return f"{base}/v1/text-to-speech/{quote(voice or self.voice_id)}/stream-input?{query}"

    async def stream_ws(self, text: str, *, voice: str | None = None) -> AsyncIterator[Audio]:
        """Send the sentences as text chunks (flushing each), yield audio as the server sends it."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            async with connect(self.ws_url(voice), additional_headers={"xi-api-key": self.api_key},
                               open_timeout=self.timeout, close_timeout=2) as ws:
                await ws.send(json.dumps({"text": " ", "xi_api_key": self.api_key,
                                          "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}}))
                for sentence in split_sentences(text):
                    await ws.send(json.dumps({"text": sentence + " ", "flush": True}))
                await ws.send(json.dumps({"text": ""}))
                async for raw in ws:
                    message: Any = json.loads(raw)
                    if not isinstance(message, dict):
                        continue
                    if message.get("error") or (message.get("message") and not message.get("audio")):
                        raise ElevenLabsWSError(f"{message.get('error', '')}: {message.get('message', '')}")
                    if message.get("audio"):
                        yield Audio(base64.b64decode(message["audio"]), OUTPUT_RATE)
                    if message.get("isFinal"):
                        return
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 1000:
                return
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            raise ElevenLabsWSError(f"connection closed: {reason or exc}") from exc
        except (OSError, WebSocketException, TimeoutError, json.JSONDecodeError) as exc:
            raise ElevenLabsWSError(f"{type(exc).__name__}: {exc}") from exc

    # --- TTS protocol -----------------------------------------------------------------------
    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        if self.use_ws:
            started = False
            try:
                async for chunk in self.stream_ws(text, voice=voice):
                    started = True
                    yield chunk
                return
            except ElevenLabsWSError as exc:
                if started:
                    raise ProviderFailure(self.name, f"WebSocket failed mid-stream: {exc}",
                                          retryable=True) from exc
                log.warning("elevenlabs: WebSocket TTS failed (%s); falling back to HTTP", exc)
        for sentence in split_sentences(text):
            yield await self.synthesize_http(sentence, voice=voice, language=language)

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        if not self.use_ws:
            return await self.synthesize_http(text, voice=voice, language=language)
        chunks = [chunk async for chunk in self.stream(text, voice=voice, language=language)]
        return concat(chunks, OUTPUT_RATE)
