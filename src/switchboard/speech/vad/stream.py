"""A `VadStream` over a per-call VAD that decides at once (WebRTC's GMM: microseconds a frame).

Heavy models are shared and batched instead (`speech.vad.batch`); this adapter is for detectors so
light that a batch would cost more than it saves, and for tests that script the decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from switchboard.speech.audio import Audio
from switchboard.speech.base import VADEvent
from switchboard.speech.vad.endpointer import Endpointer, EndpointSettings


class EndpointedVAD(Protocol):
    sample_rate: int
    endpointer: Endpointer

    def process(self, pcm: bytes) -> list[VADEvent]: ...

    def flush(self) -> list[VADEvent]: ...


def _ignore(events: list[VADEvent]) -> None:
    pass


class InlineVadStream:
    """Runs `vad` on each push and hands the events straight to the listener."""

    def __init__(self, vad: EndpointedVAD) -> None:
        self.vad = vad
        self.sample_rate = vad.sample_rate
        self._listener: Callable[[list[VADEvent]], None] = _ignore

    def set_listener(self, listener: Callable[[list[VADEvent]], None]) -> None:
        self._listener = listener

    def report_pauses(self, after: float | None) -> None:
        """Also report "pause" events after `after` seconds of quiet inside an utterance."""
        self.vad.endpointer.pause_after = after

    def push(self, pcm: bytes) -> None:
        events = self.vad.process(pcm)
        if events:
            self._listener(events)

    @property
    def in_speech(self) -> bool:
        return self.vad.endpointer.in_speech

    def current_audio(self) -> Audio:
        return self.vad.endpointer.current_audio()

    def flush(self) -> list[VADEvent]:
        return self.vad.flush()

    def close(self) -> None:
        self._listener = _ignore


class WebRtcVadProvider:
    """`VAD_PROVIDER=webrtc`: one light detector per call, decided inline."""

    name = "webrtc"

    def __init__(self, settings: EndpointSettings | None = None, aggressiveness: int = 2) -> None:
        self.settings = settings or EndpointSettings()
        self.aggressiveness = aggressiveness

    def open(self, sample_rate: int) -> InlineVadStream:
        from switchboard.speech.vad.webrtc import WebRtcVAD

        return InlineVadStream(WebRtcVAD(sample_rate, settings=self.settings, aggressiveness=self.aggressiveness))

    async def warm_up(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
