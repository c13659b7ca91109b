"""WebRTC's GMM voice detector (`webrtcvad`): microseconds per frame, more false positives."""

from __future__ import annotations

from switchboard.speech.base import VADEvent
from switchboard.speech.vad.endpointer import Endpointer, EndpointSettings


class WebRtcVAD:
    name = "webrtc"

    def __init__(self, sample_rate: int = 8000, *, settings: EndpointSettings | None = None,
                 aggressiveness: int = 2, frame_ms: int = 30) -> None:
        import webrtcvad

        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"webrtcvad runs at 8/16/32/48 kHz, not {sample_rate}")
        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad frames are 10, 20 or 30 ms")
        self.sample_rate = sample_rate
        self._vad = webrtcvad.Vad(aggressiveness)
        self._frame = sample_rate * frame_ms // 1000
        self.endpointer = Endpointer(sample_rate, self._frame, settings or EndpointSettings())
        self._buffer = b""

    def process(self, pcm: bytes) -> list[VADEvent]:
        self._buffer += pcm
        size = self._frame * 2
        events: list[VADEvent] = []
        while len(self._buffer) >= size:
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            events.extend(self.endpointer.push(frame, self._vad.is_speech(frame, self.sample_rate)))
        return events

    def flush(self) -> list[VADEvent]:
        return self.endpointer.flush()

    def reset(self) -> None:
        self._buffer = b""
        self.endpointer.reset()
