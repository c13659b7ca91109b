"""The interfaces of the speech stages. One module per provider implements one of them.

Providers are picked by name from settings (see `speech.registry`); the engine and the backends only
see these protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import AsyncIterator, Protocol, runtime_checkable

from switchboard.speech.audio import Audio


class ProviderFailure(Exception):
    """A provider could not serve (quota, balance, auth, outage). Feeds the dialer's failure threshold."""

    def __init__(self, provider: str, reason: str, *, retryable: bool = False) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        self.retryable = retryable


class EmptyAudio(Exception):
    """Audio too short/quiet to be speech: the engine treats it as the caller hanging up."""


@dataclass(slots=True)
class Transcript:
    text: str
    language: str | None = None
    confidence: float | None = None
    latency: float = 0.0  # seconds spent transcribing
    queued: float = 0.0  # seconds waiting for a slot of the shared STT pool before that


@runtime_checkable
class STT(Protocol):
    name: str

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None) -> Transcript: ...


@runtime_checkable
class TTS(Protocol):
    name: str

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio: ...

    def stream(self, text: str, *, voice: str | None = None,
               language: str | None = None) -> AsyncIterator[Audio]:
        """Sentence by sentence, so playback can start before the whole text is synthesized."""
        ...


@dataclass(slots=True)
class VADEvent:
    kind: str  # "start" | "end" | "pause" (quiet inside an utterance, only when asked for)
    at: float  # seconds from the start of the stream
    audio: Audio | None = None  # the utterance, on "end"


@runtime_checkable
class VAD(Protocol):
    sample_rate: int

    def process(self, pcm: bytes) -> list[VADEvent]:
        """Feed PCM16 frames; returns speech start/end events as they are detected."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class VadStream(Protocol):
    """One call's voice activity over its whole inbound stream.

    Frames are pushed as they arrive (each exactly once); the decisions come back as events through
    the listener, either at once (light VADs) or a few milliseconds later, when a shared model has
    evaluated the windows of every call in one batch (`speech.vad.batch`). Endpointing state runs
    continuously, so speech that starts while nobody listens is still whole when someone does."""

    sample_rate: int

    def set_listener(self, listener: "Callable[[list[VADEvent]], None]") -> None: ...

    def report_pauses(self, after: float | None) -> None:
        """Also send a "pause" event (with the utterance's audio so far) once the caller has been
        quiet for `after` seconds inside an utterance; None: no pause events (the default)."""
        ...

    def push(self, pcm: bytes) -> None:
        """Append PCM16 samples at `sample_rate` (any length); never blocks."""
        ...

    @property
    def in_speech(self) -> bool: ...

    def current_audio(self) -> Audio:
        """The utterance in progress (empty when none)."""
        ...

    def flush(self) -> list[VADEvent]:
        """End the utterance in progress now (an "end" event with its audio, or nothing)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class VadProvider(Protocol):
    """Opens one `VadStream` per call; a provider may share one model across all of them."""

    name: str

    def open(self, sample_rate: int) -> VadStream: ...

    async def warm_up(self) -> None:
        """Load the model now (off the event loop) rather than under the first call."""
        ...

    async def aclose(self) -> None:
        """Release the shared model (the process is stopping)."""
        ...
