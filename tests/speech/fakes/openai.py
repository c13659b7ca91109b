"""A fake of OpenAI's audio endpoints: `/v1/audio/transcriptions` (multipart) and
`/v1/audio/speech` (JSON -> raw 24 kHz PCM16), with OpenAI's error bodies."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse, Response

API_KEY = "sk-test-key"


def openai_error(status: int, message: str, type_: str, code: str | None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": None, "code": code}},
                        status_code=status)


@dataclass
class FakeOpenAI:
    transcript: str = "yes I'm interested"
    fail_next: list[tuple[int, str, str | None]] = field(default_factory=list)  # (status, type, code)
    requests: list[dict[str, object]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        def check(authorization: str | None) -> JSONResponse | None:
            if authorization != f"Bearer {API_KEY}":
                return openai_error(401, "Incorrect API key provided.", "invalid_request_error",
                                    "invalid_api_key")
            if self.fail_next:
                status, type_, code = self.fail_next.pop(0)
                return openai_error(status, f"scripted {code or type_}", type_, code)
            return None

        @app.post("/v1/audio/transcriptions")
        async def transcriptions(file: Annotated[UploadFile, File()], model: Annotated[str, Form()],
                                 language: str | None = Form(None), prompt: str | None = Form(None),
                                 response_format: str = Form("json"),
                                 authorization: str | None = Header(None)) -> Response:
            err = check(authorization)
            if err is not None:
                return err
            data = await file.read()
            with wave.open(io.BytesIO(data)) as w:
                rate, frames = w.getframerate(), w.getnframes()
            self.requests.append({"model": model, "language": language, "prompt": prompt,
                                  "rate": rate, "frames": frames, "format": response_format})
            return JSONResponse({"text": self.transcript})

        @app.post("/v1/audio/speech")
        async def speech(request: Request, authorization: str | None = Header(None)) -> Response:
            err = check(authorization)
            if err is not None:
                return err
            body = await request.json()
            self.requests.append(body)
            if not body.get("input") or not body.get("voice"):
                return openai_error(400, "input and voice are required", "invalid_request_error", None)
            seconds = 0.05 * len(body["input"])
            t = np.arange(int(24000 * seconds)) / 24000
            pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()
            return Response(pcm, media_type="audio/pcm")

        return app
