"""The one interface every telephony backend implements, and the engine drives.

The engine never knows which backend it runs on. Two families fit behind it:

* PBX-media backends (Asterisk ARI): the PBX plays and records files on its side; `play` maps to a
  playback, `record` returns the recorded file's audio.
* Streaming backends (Twilio Media Streams, WebRTC, the simulator in audio mode): audio frames flow
  both ways; `play`/`speak` stream frames out, `record` runs VAD endpointing on frames in.

Every method is event-driven (it completes when the backend reports completion, never on a timer
guess). When the far end hangs up, any pending or later call raises `CallerHangup`; the engine
turns that into the right result for where the flow was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum
from collections.abc import AsyncIterable, Callable
from contextlib import AbstractAsyncContextManager
from typing import AsyncIterator, Literal, Protocol, runtime_checkable

from switchboard.speech.audio import Audio  # re-exported: the one Audio type lives in speech

Direction = Literal["outbound", "inbound"]


class CallerHangup(Exception):
    """The far end hung up; raised from any pending or later Call operation."""

    def __init__(self, cause: str = "normal") -> None:
        super().__init__(cause)
        self.cause = cause


class CallFailed(Exception):
    """The backend could not do what was asked (provider/PBX failure), with a short reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DialOutcome(str, Enum):
    """How an outbound origination ended before the flow could start."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    CONGESTION = "congestion"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CallCapabilities:
    """What a call can do beyond the protocol's basics, declared by its backend so that steps read
    it instead of probing for methods.

    `audio` says how turns travel: "text" (the simulator's text mode hands over words), "files" (a
    PBX plays and records files), "stream" (audio frames both ways through a `VoiceSession`).
    `stream_on_request`: the call offers `streaming()`, an async context manager inside which its
    turns are streamed (ARI's externalMedia channel, opened for a conversation).
    `speaks_text_streams`: the call offers `speak_stream(sentences)`, which speaks sentences as they
    are still being written (an LLM's reply): the next is synthesized while the previous plays."""

    audio: Literal["text", "files", "stream"] = "text"
    stream_on_request: bool = False
    speaks_text_streams: bool = False


TEXT_CALL = CallCapabilities()


@dataclass(slots=True)
class Recording:
    """What a `record`/listen produced.

    Text-mode backends (the simulator) fill `text` directly; audio backends fill `audio` and the
    engine runs STT. `dtmf` holds digits pressed while recording. `path` is where the original is
    kept for review, when the backend stored it.
    """

    audio: Audio | None = None
    text: str | None = None
    dtmf: str = ""
    path: str | None = None
    confidence: float | None = None
    language: str | None = None

    @property
    def is_empty(self) -> bool:
        if self.text is not None:
            return not self.text.strip()
        return self.audio is None or not self.audio.pcm


@dataclass(slots=True)
class PlaybackResult:
    completed: bool = True  # False when interrupted (barge-in, DTMF)
    interrupted_by: str | None = None


@dataclass(slots=True)
class TransferResult:
    """Outcome of `transfer`: answered by the operator or not, and why not."""

    answered: bool
    operator_number: str
    reason: str = ""  # no_answer | busy | failed | timeout


@dataclass(slots=True)
class CallEvent:
    kind: Literal["hangup", "dtmf", "playback_finished", "recording_finished", "answered", "speech"]
    data: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Call(Protocol):
    """A live call, as the engine sees it."""

    call_id: str
    direction: Direction
    remote_number: str  # the customer's number
    line_number: str | None  # our outbound line / the number that was dialled inbound
    capabilities: CallCapabilities  # declared by the backend; see CallCapabilities

    @property
    def hung_up(self) -> bool: ...

    async def answer(self) -> None: ...

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        """Play a prompt reference such as `sound:custom/hello` (or a URL / file path)."""
        ...

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        """Speak text with the backend's TTS path (PBX file, or streamed frames)."""
        ...

    async def record(self, *, max_duration: float, max_silence: float,
                     terminate_on: str = "") -> Recording:
        """Listen to the caller until silence, max duration or a terminating DTMF key."""
        ...

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float,
                       hold_prompt: str | None = None) -> TransferResult:
        """Ring an operator and, when they answer, bridge them with the caller."""
        ...

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        """Keep the call up until someone hangs up (True) or the timeout passes (False)."""
        ...

    async def hangup(self, cause: str = "normal") -> None: ...

    def events(self) -> AsyncIterator[CallEvent]: ...


@runtime_checkable
class SpeaksTextStreams(Protocol):
    """A call whose `capabilities.speaks_text_streams` is true."""

    async def speak_stream(self, sentences: AsyncIterable[str], *, language: str | None = None,
                           voice: str | None = None, interruptible: bool = False) -> PlaybackResult: ...


@runtime_checkable
class StreamsOnRequest(Protocol):
    """A call whose `capabilities.stream_on_request` is true: `streaming()` streams the block's
    turns (VAD endpointing, barge-in) and returns to its ordinary media afterwards."""

    def streaming(self) -> AbstractAsyncContextManager[object]: ...


class HangupSignal:
    """Helper for backends: one place that records a hang-up and wakes every waiter (and tells each
    subscriber, synchronously, e.g. a media port whose session must stop at once)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.cause = ""
        self._subscribers: list[Callable[[str], None]] = []

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, cause: str = "normal") -> None:
        if not self._event.is_set():
            self.cause = cause
            self._event.set()
            for subscriber in list(self._subscribers):
                subscriber(cause)

    def subscribe(self, subscriber: Callable[[str], None]) -> Callable[[], None]:
        """Call `subscriber(cause)` on the hang-up (at once if it already happened); returns the
        unsubscribe function."""
        if self._event.is_set():
            subscriber(self.cause)
            return lambda: None
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    async def wait(self) -> None:
        await self._event.wait()

    def check(self) -> None:
        if self._event.is_set():
            raise CallerHangup(self.cause)

    async def race(self, awaitable: "asyncio.Future[object] | asyncio.Task[object]") -> object:
        """Await `awaitable` unless the caller hangs up first (then cancel it and raise)."""
        self.check()
        waiter = asyncio.ensure_future(self._event.wait())
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            waiter.cancel()
            raise
        if task in done:
            waiter.cancel()
            return task.result()
        task.cancel()
        raise CallerHangup(self.cause)
