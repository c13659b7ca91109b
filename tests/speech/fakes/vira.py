"""A fake of Vira's STT (multipart upload) and TTS (JSON -> WAV) endpoints with its error bodies:
"Empty Audio file", and balance errors."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse, Response

TOKEN = "vira-test-token"


@dataclass
class FakeVira:
    transcript: str = "بله علاقه دارم"
    mode: str = "ok"  # ok | empty | balance | balance_200 | busy_then_ok
    busy: int = 0
    uploads: list[dict[str, object]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        def auth_error(authorization: str | None) -> JSONResponse | None:
            if authorization != f"Bearer {TOKEN}":
                return JSONResponse({"status": "error", "message": "Invalid token"}, status_code=401)
            return None

        def scripted() -> JSONResponse | None:
            if self.mode == "balance":
                return JSONResponse({"status": "error", "message": "Insufficient balance"}, status_code=402)
            if self.mode == "balance_200":
                return JSONResponse({"status": "error", "message": "Your credit is not enough"})
            if self.busy > 0:
                self.busy -= 1
                return JSONResponse({"status": "error", "message": "Service busy"}, status_code=503)
            return None

        @app.post("/stt")
        async def stt(file: Annotated[UploadFile, File()], language: Annotated[str, Form()] = "fa",
                      authorization: str | None = Header(None)) -> Response:
            err = auth_error(authorization) or scripted()
            if err is not None:
                return err
            data = await file.read()
            with wave.open(io.BytesIO(data)) as w:
                samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
                rate = w.getframerate()
            peak = int(np.abs(samples).max()) if samples.size else 0
            self.uploads.append({"rate": rate, "samples": samples.size, "peak": peak, "language": language})
            if self.mode == "empty" or samples.size == 0 or peak < 50:
                return JSONResponse({"status": "error", "message": "Empty Audio file"}, status_code=400)
            return JSONResponse({"status": "success", "data": {"text": self.transcript}})

        @app.post("/tts")
        async def tts(request: Request, authorization: str | None = Header(None)) -> Response:
            err = auth_error(authorization) or scripted()
            if err is not None:
                return err
            body = await request.json()
            self.uploads.append(body)
            t = np.arange(int(22050 * 0.5)) / 22050
            buf = io.BytesIO()
            with wave.open(buf, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(22050)
                w.writeframes((0.3 * np.sin(2 * np.pi * 200 * t) * 32767).astype("<i2").tobytes())
            return Response(buf.getvalue(), media_type="audio/wav")

        return app
