"""`AudioPort`: the whole contract between turn-taking (`VoiceSession`) and a transport.

A transport (Twilio Media Streams, WebRTC, ARI externalMedia RTP, the simulator) is only its wire
format and its signalling. Everything about turns — VAD endpointing, barge-in, pacing, prompts,
silence timeouts — lives once in `switchboard.voice.session`, which drives any `AudioPort`.

The shape follows LiveKit Agents' `voice/io.py` (AudioInput / AudioOutput: capture a frame, flush,
clear the buffer, wait for playout) made smaller still, and turned around on the way in: the
transport *pushes* each caller frame into an `AudioSink` the session owns, so the frame path needs
no task, timer, queue or thread hop per frame; the session runs the VAD on it in shared batches.

What a transport author implements
----------------------------------
Subclass `AudioPort` and provide:

``sample_rate``
    The rate (Hz) of every PCM16 frame in and out, fixed for the port's life: 8000 for μ-law
    (Twilio, RTP `ulaw`), 16000 for RTP `slin16` or a wideband WebRTC track. The session resamples
    what it plays to this rate; the VAD needs 8000 or 16000.

Inbound — call the sink the session attached (``self.sink``), always on the event-loop thread
(a transport that reads in a thread hops once per *batch* with ``loop.call_soon_threadsafe``):

* ``sink.on_frame(pcm)`` for each 20 ms of caller audio: PCM16 little-endian mono at
  ``sample_rate``, exactly ``frame_bytes`` long, in order, roughly in real time. Decode the wire
  codec here (`switchboard.speech.audio.ulaw_to_pcm16`); use `FrameAssembler` if the wire's chunks
  are not 20 ms. Lost packets may be replaced by silence or skipped; never deliver a frame twice.
  When the far end sends nothing while it is silent (RTP without comfort noise, DTX), deliver
  silence frames for the gap (a few at a time is fine): the session counts time in audio, and the
  silence is what ends an utterance.
* ``sink.on_dtmf(digit)`` for each key the caller presses ("0"-"9", "*", "#", "A"-"D").
* ``sink.on_played(token)`` when the far end has played everything sent before ``mark(token)``.
* ``sink.on_hangup(cause)`` once, when the far end is gone (stream stopped, socket closed, channel
  destroyed). No sink call follows it.

Frames that arrive before a sink is attached are dropped (`NullSink`).

Outbound — the session calls these, on the event-loop thread; none may block or await:

``send(pcm)``
    One or more whole 20 ms frames of agent audio (PCM16 at ``sample_rate``) that are due to be
    played *now*. The session paces: it hands over each frame at its playout time, at most a small
    jitter allowance early, so the port transmits at once (encode, write, return) and never paces
    or queues audio of its own beyond what the wire needs.
``mark(token)``
    Report ``sink.on_played(token)`` when everything sent before this call has been played out.
    A port that learns it from the far end does so (Twilio echoes a ``mark`` message); a port that
    cannot know (RTP: audio is played as it arrives) reports it at once with ``self.played_now``.
    The session waits for the later of the mark and its own pacing schedule, so either is right.
``clear()``
    Drop agent audio the far end has not played yet, at once (Twilio ``clear``; RTP has nothing
    queued beyond the jitter allowance). Marks still outstanding are reported played, as Twilio
    itself does after a ``clear``.
``async close()``
    Release the transport (close the socket, drop the media channel). Idempotent. Hanging up the
    *call* is signalling and belongs to the backend (`switchboard.voice.call.CallControl`); for a
    transport whose stream *is* the call (a Twilio ``<Connect><Stream>``), closing ends the call.

Tests drive `VoiceSession` on an in-memory port (`tests/fakes/voice.py`) with a scripted VAD, then
each real transport again.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

FRAME_MS = 20
FRAME_SECONDS = FRAME_MS / 1000


def frame_bytes(sample_rate: int) -> int:
    """Bytes in one 20 ms PCM16 mono frame at `sample_rate`."""
    return sample_rate * FRAME_MS // 1000 * 2


class AudioSink(Protocol):
    """What a port reports to (the session implements it). Called on the event-loop thread only;
    every method returns at once."""

    def on_frame(self, pcm: bytes) -> None:
        """One 20 ms PCM16 frame of the caller's audio at the port's rate."""
        ...

    def on_dtmf(self, digit: str) -> None: ...

    def on_played(self, token: int) -> None:
        """Everything sent before `mark(token)` has been played at the far end."""
        ...

    def on_hangup(self, cause: str) -> None:
        """The far end is gone; the last call a port makes."""
        ...


class NullSink:
    """The sink of a port nobody listens to yet: drops everything."""

    def on_frame(self, pcm: bytes) -> None:
        pass

    def on_dtmf(self, digit: str) -> None:
        pass

    def on_played(self, token: int) -> None:
        pass

    def on_hangup(self, cause: str) -> None:
        pass


NULL_SINK = NullSink()


class AudioPort(ABC):
    """One call's audio both ways over one transport. See the module docstring for the contract."""

    sample_rate: int = 8000
    sink: AudioSink = NULL_SINK

    @property
    def frame_bytes(self) -> int:
        return frame_bytes(self.sample_rate)

    def attach(self, sink: AudioSink) -> None:
        """The session takes the port's inbound side; reports go to `sink` from now on."""
        self.sink = sink

    @abstractmethod
    def send(self, pcm: bytes) -> None:
        """Transmit whole 20 ms frames of agent audio now (they are due); never blocks."""

    @abstractmethod
    def mark(self, token: int) -> None:
        """Report `sink.on_played(token)` once everything sent so far has been played."""

    @abstractmethod
    def clear(self) -> None:
        """Drop agent audio not yet played, at once; outstanding marks are reported played."""

    @abstractmethod
    async def close(self) -> None:
        """Release the transport; idempotent."""

    def played_now(self, token: int) -> None:
        """For ports that cannot know the far end's playout: the mark is reached as it is sent."""
        self.sink.on_played(token)


class FrameAssembler:
    """Cuts a byte stream of PCM16 into whole 20 ms frames, for wires whose chunks vary."""

    def __init__(self, sample_rate: int) -> None:
        self.size = frame_bytes(sample_rate)
        self._pending = b""

    def push(self, pcm: bytes) -> list[bytes]:
        data = self._pending + pcm if self._pending else pcm
        whole = len(data) - len(data) % self.size
        self._pending = data[whole:]
        if whole == self.size:
            return [data[:whole]]
        return [data[i:i + self.size] for i in range(0, whole, self.size)]


class EagerSender:
    """Sends through an async write (a WebSocket's `send_text`) from synchronous code, in order,
    without a task per message.

    Socket writes almost never wait (the transport buffers them), so each write's coroutine is run
    synchronously as far as it goes; only when one really has to wait (flow control) does a task
    finish it, and later messages queue behind it until it has. `failed` holds the error once the
    link is gone; later sends are dropped (the port reports the hang-up from its reading side)."""

    def __init__(self, write: Callable[[Any], Awaitable[None]]) -> None:
        self._write = write
        self._backlog: deque[Any] = deque()
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    def send(self, message: Any) -> None:
        if self.failed is not None:
            return
        if self._task is not None:
            self._backlog.append(message)
            return
        coro = self._write(message)
        try:
            yielded = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        except Exception as exc:
            self.failed = exc
            return
        self._task = asyncio.ensure_future(self._finish(coro, yielded))  # type: ignore[arg-type]

    async def _finish(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        try:
            while True:  # drive the paused write as a task would
                try:
                    if yielded is None:
                        await asyncio.sleep(0)
                    else:
                        await asyncio.wait([yielded])
                except asyncio.CancelledError:
                    coro.close()
                    raise
                try:
                    yielded = coro.send(None)
                except StopIteration:
                    break
            while self._backlog:
                await self._write(self._backlog.popleft())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed = exc
            self._backlog.clear()
        finally:
            self._task = None

    async def drain(self) -> None:
        """Wait until everything sent so far has been written."""
        while self._task is not None:
            await asyncio.wait([self._task])


__all__ = ["EagerSender", "AudioPort", "AudioSink", "FRAME_MS", "FRAME_SECONDS", "FrameAssembler", "NULL_SINK", "NullSink",
           "frame_bytes"]
