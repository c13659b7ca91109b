"""A fake of ElevenLabs TTS: REST `POST /v1/text-to-speech/{voice_id}?output_format=pcm_16000`
and the WebSocket `/v1/text-to-speech/{voice_id}/stream-input` protocol (JSON text chunks in,
base64 audio + `isFinal` out), with ElevenLabs' `{"detail": {"status", "message"}}` errors."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import numpy as np
from fastapi import FastAPI, Header, Request, WebSocket
from fastapi.responses import JSONResponse, Response

API_KEY = "xi-test-key"
VOICE = "voice123"
RATE = 16000


def tone(text: str) -> bytes:
    t = np.arange(int(RATE * 0.04 * max(1, len(text)))) / RATE
    return (0.25 * np.sin(2 * np.pi * 330 * t) * 32767).astype("<i2").tobytes()


@dataclass
class FakeElevenLabs:
    quota_exceeded: bool = False
    ws_fail: str | None = None  # None | "refuse" | "error_message"
    http_fail_next: list[int] = field(default_factory=list)
    http_requests: list[dict[str, object]] = field(default_factory=list)
    ws_messages: list[dict[str, object]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/text-to-speech/{voice_id}")
        async def tts(voice_id: str, request: Request, output_format: str = "mp3_44100_128",
                      xi_api_key: str | None = Header(None, alias="xi-api-key")) -> Response:
            if xi_api_key != API_KEY:
                return JSONResponse({"detail": {"status": "invalid_api_key",
                                                "message": "Invalid API key"}}, status_code=401)
            if self.quota_exceeded:
                return JSONResponse({"detail": {"status": "quota_exceeded", "message":
                                                "This request exceeds your quota of 10000."}}, status_code=401)
            if self.http_fail_next:
                return JSONResponse({"detail": {"status": "busy", "message": "try later"}},
                                    status_code=self.http_fail_next.pop(0))
            if voice_id != VOICE:
                return JSONResponse({"detail": {"status": "voice_not_found", "message": "no voice"}},
                                    status_code=404)
            body = await request.json()
            self.http_requests.append({"body": body, "output_format": output_format})
            return Response(tone(body["text"]), media_type="audio/pcm")

        @app.websocket("/v1/text-to-speech/{voice_id}/stream-input")
        async def stream_input(ws: WebSocket, voice_id: str) -> None:
            if self.ws_fail == "refuse":
                await ws.close(code=1008, reason="refused")
                return
            await ws.accept()
            first = json.loads(await ws.receive_text())
            self.ws_messages.append(first)
            if first.get("xi_api_key") != API_KEY and ws.headers.get("xi-api-key") != API_KEY:
                await ws.send_text(json.dumps({"message": "Invalid API key", "error": "invalid_api_key",
                                               "code": 1008}))
                await ws.close(code=1008)
                return
            if self.ws_fail == "error_message":
                await ws.send_text(json.dumps({"message": "quota", "error": "quota_exceeded", "code": 1008}))
                await ws.close(code=1008)
                return
            while True:
                message = json.loads(await ws.receive_text())
                self.ws_messages.append(message)
                text = message.get("text", "")
                if text == "":
                    await ws.send_text(json.dumps({"audio": None, "isFinal": True}))
                    await ws.close()
                    return
                if text.strip():
                    await ws.send_text(json.dumps({
                        "audio": base64.b64encode(tone(text.strip())).decode(), "isFinal": None,
                        "normalizedAlignment": None, "alignment": None}))

        return app
