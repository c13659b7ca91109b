"""Turn-taking without a transport (after LiveKit Agents' `tests/fake_io.py`).

* `FakePort`: an in-memory `AudioPort` with a caller on the far side who speaks on an absolute
  20 ms schedule (`says`, `silent`), presses keys and hangs up; it records every agent frame with
  the loop time it was sent, and plays them out like a carrier with a buffer would (`buffered=True`:
  marks come back when the far end has played the audio, `clear()` drops what is buffered) or like
  RTP (marks at once).
* `ScriptedVad`: a `VadStream` whose decision per 20 ms frame is "is this frame loud", run through
  the real `Endpointer`, synchronously — so a test knows exactly when the VAD decides.

Run the tests on `switchboard.clock.run_virtual` and the timings are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from switchboard.speech.audio import Audio
from switchboard.speech.base import VADEvent
from switchboard.speech.vad.endpointer import Endpointer, EndpointSettings
from switchboard.voice.port import FRAME_SECONDS, AudioPort

LOUD = 8000  # amplitude of the caller's "speech" frames


def speech_frame(rate: int = 8000, value: int = LOUD) -> bytes:
    return np.full(rate // 50, value, dtype="<i2").tobytes()


def silence_frame(rate: int = 8000) -> bytes:
    return b"\x00\x00" * (rate // 50)


@dataclass
class Sent:
    at: float
    pcm: bytes


@dataclass
class FakePort(AudioPort):
    sample_rate: int = 8000
    buffered: bool = False  # True: the far end buffers and reports marks when played (Twilio-like)
    sent: list[Sent] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    closed: bool = False
    _playout_end: float = 0.0
    _pending_marks: list[tuple[float, int]] = field(default_factory=list)
    _caller: asyncio.Task[None] | None = None

    def __hash__(self) -> int:
        return id(self)

    # --- the agent's side (AudioPort) -------------------------------------------------------------
    def send(self, pcm: bytes) -> None:
        assert len(pcm) % self.frame_bytes == 0, "whole 20 ms frames only"
        assert not self.closed, "sent after close"
        now = asyncio.get_running_loop().time()
        for i in range(0, len(pcm), self.frame_bytes):
            self.sent.append(Sent(now, pcm[i:i + self.frame_bytes]))
            self._playout_end = max(self._playout_end, now) + FRAME_SECONDS

    def mark(self, token: int) -> None:
        self.marks.append(token)
        if not self.buffered:
            self.played_now(token)
            return
        loop = asyncio.get_running_loop()
        handle = (self._playout_end, token)
        self._pending_marks.append(handle)
        loop.call_at(self._playout_end, self._echo, handle)

    def _echo(self, handle: tuple[float, int]) -> None:
        if handle in self._pending_marks:
            self._pending_marks.remove(handle)
            self.sink.on_played(handle[1])

    def clear(self) -> None:
        now = asyncio.get_running_loop().time()
        self.clears.append(now)
        self._playout_end = now
        for handle in list(self._pending_marks):  # as Twilio does: outstanding marks come back
            self._echo(handle)

    async def close(self) -> None:
        self.closed = True
        if self._caller is not None:
            self._caller.cancel()

    # --- the caller's side --------------------------------------------------------------------------
    def start_caller(self, script: list[tuple[str, float]], *, then_silence: bool = True) -> None:
        """Play `script` as 20 ms frames in real (loop) time: ("speech"|"silence", seconds) items."""
        self._caller = asyncio.ensure_future(self._run_caller(script, then_silence))

    async def _run_caller(self, script: list[tuple[str, float]], then_silence: bool) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = 0
        frames: list[bytes] = []
        for kind, seconds in script:
            frame = speech_frame(self.sample_rate) if kind == "speech" else silence_frame(self.sample_rate)
            frames.extend([frame] * round(seconds / FRAME_SECONDS))
        while frames or then_silence:
            frame = frames.pop(0) if frames else silence_frame(self.sample_rate)
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * FRAME_SECONDS - loop.time()))
            if self.closed:
                return
            self.sink.on_frame(frame)

    def press(self, digit: str) -> None:
        self.sink.on_dtmf(digit)

    def far_hangup(self, cause: str = "normal") -> None:
        if self._caller is not None:
            self._caller.cancel()
        self.sink.on_hangup(cause)

    def sent_between(self, start: float, end: float) -> list[Sent]:
        return [s for s in self.sent if start <= s.at < end]


class ScriptedVad:
    """A `VadStream`: a frame is speech when it is loud; the real `Endpointer` makes the events."""

    def __init__(self, sample_rate: int = 8000, settings: EndpointSettings | None = None) -> None:
        self.sample_rate = sample_rate
        self.endpointer = Endpointer(sample_rate, sample_rate // 50, settings or EndpointSettings(
            min_speech=0.1, end_silence=0.3, pre_roll=0.2))
        self.pushed = 0  # frames pushed: each caller frame must arrive exactly once
        self.events: list[tuple[float, VADEvent]] = []
        self.closed = False
        self._listener: Callable[[list[VADEvent]], None] = lambda events: None

    def set_listener(self, listener: Callable[[list[VADEvent]], None]) -> None:
        self._listener = listener

    def push(self, pcm: bytes) -> None:
        self.pushed += 1
        loud = bool(np.abs(np.frombuffer(pcm, dtype="<i2")).max(initial=0) > LOUD // 2)
        events = self.endpointer.push(pcm, loud)
        if events:
            now = asyncio.get_running_loop().time()
            self.events.extend((now, e) for e in events)
            self._listener(events)

    @property
    def in_speech(self) -> bool:
        return self.endpointer.in_speech

    def current_audio(self) -> Audio:
        return self.endpointer.current_audio()

    def flush(self) -> list[VADEvent]:
        return self.endpointer.flush()

    def close(self) -> None:
        self.closed = True

    def started_at(self, n: int = 0) -> float:
        return [t for t, e in self.events if e.kind == "start"][n]


class ToneSpeech:
    """The TTS stand-in (`StreamSpeech`): a tone as long as the text says (`"1.5s ..."`, default
    1 s) at 16 kHz, after `delay` seconds of "synthesis" per sentence; records what was asked."""

    def __init__(self, delay: float = 0.0, rate: int = 16000) -> None:
        self.delay = delay
        self.rate = rate
        self.asked: list[tuple[str, float]] = []  # (text, loop time asked)

    def __call__(self, text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
        return self._stream(text)

    async def _stream(self, text: str):  # type: ignore[no-untyped-def]
        self.asked.append((text, asyncio.get_running_loop().time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        seconds = float(text.split("s", 1)[0]) if text[:1].isdigit() else 1.0
        t = np.arange(int(seconds * self.rate)) / self.rate
        yield Audio((np.sin(2 * np.pi * 300 * t) * 6000).astype("<i2").tobytes(), self.rate)
