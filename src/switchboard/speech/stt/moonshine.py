"""Fast offline English STT: Moonshine tiny (`moonshine-voice==0.1.0`).

Whisper always encodes a 30 s window, so even "yes" costs it a second or more on a CPU; Moonshine's
encoder runs on the audio's real length (~130 ms for a short phone answer on a quiet 2-core
machine) and takes 8 kHz audio as it comes off the phone line. It is English only, so it is chosen
per language (`STT_PROVIDER_EN=moonshine`) with Whisper for the rest.

The version is pinned: 0.1.0 is the release whose wheel carries the tiny English weights
(`moonshine_voice/assets/tiny-en/*.ort`) and runs them through its bundled ONNX Runtime; later
releases download the weights at run time, which fails offline. Nothing here touches the network:
the model path is the wheel's own assets folder. Transcriptions run on a small dedicated thread
pool (one model per thread: the native transcriber is not documented as thread-safe), so the event
loop never waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from switchboard.speech.audio import Audio, resample, to_float
from switchboard.speech.base import ProviderFailure, Transcript

log = logging.getLogger(__name__)

MODEL = "tiny-en"
RATES = (8000, 16000)


def model_path(name: str = MODEL) -> str:
    """The weights inside the installed wheel (never downloaded)."""
    from moonshine_voice.utils import get_model_path

    path = get_model_path(name)
    if not (path / "encoder_model.ort").is_file():
        raise ProviderFailure("moonshine", f"no bundled model at {path}: install moonshine-voice==0.1.0")
    return str(path)


class MoonshineSTT:
    name = "moonshine"

    def __init__(self, *, max_parallel: int = 1, model: str = MODEL) -> None:
        self.model = model
        self.max_parallel = max(1, max_parallel)
        self._executor = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="moonshine")
        self._local = threading.local()

    def _transcriber(self) -> Any:
        transcriber = getattr(self._local, "transcriber", None)  # one per worker thread
        if transcriber is None:
            from moonshine_voice import ModelArch
            from moonshine_voice.transcriber import Transcriber

            started = time.perf_counter()
            transcriber = Transcriber(model_path(self.model), model_arch=ModelArch.TINY)
            log.info("moonshine %s loaded in %.2f s", self.model, time.perf_counter() - started)
            self._local.transcriber = transcriber
        return transcriber

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._transcriber)

    def transcribe_sync(self, audio: Audio, *, language: str | None = None,
                        hotwords: list[str] | None = None) -> Transcript:
        started = time.perf_counter()
        if audio.sample_rate not in RATES:
            audio = resample(audio, 16000)
        samples = to_float(audio)
        result = self._transcriber().transcribe_without_streaming(samples.tolist(), sample_rate=audio.sample_rate)
        text = " ".join(line.text.strip() for line in result.lines if line.text.strip())
        return Transcript(text=text, language="en", latency=time.perf_counter() - started)

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None) -> Transcript:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: self.transcribe_sync(audio, language=language))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
