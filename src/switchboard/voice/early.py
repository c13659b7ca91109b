"""Early transcripts: a streamed caller's words are transcribed while the VAD still waits to be sure
they have finished.

The end of an utterance is certain only after `VAD_END_SILENCE` of quiet (0.3–0.6 s), and STT then
takes another 0.1–1.5 s, one after the other. But the audio the utterance will end with is known
sooner: the endpointer keeps only 0.1 s of trailing quiet, so once the caller has been quiet for
`after` (at least that 0.1 s) the audio is final unless they speak again. The session then starts
its transcription at once (the VAD's "pause" event); when the end comes with exactly that audio the
job is *adopted*, so STT ran during the silence the VAD had to wait out anyway. If the caller speaks
again, the job is dropped and the next pause starts another (the cost: one transcription per pause
of `after` inside an utterance, so `after` is not made too short).

Consumers — the engine's listen steps, the conversation service — transcribe through
`EarlyTranscripts` as through any transcriber. Asked for an utterance a session adopted, with the
language and hot words its job was started with, it answers with that job; anything else goes to the
inner transcriber unchanged. A call's next job is started with the language and hot words its
consumer asked for last (the first one with the call's language).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.speech.audio import Audio
from switchboard.speech.base import Transcript

KEPT = 256  # adopted jobs waiting for their consumer (process-wide); the oldest go first


class Transcriber(Protocol):
    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None, **kwargs: Any) -> Transcript: ...


@dataclass(slots=True)
class TranscriptHints:
    """What one call's consumer transcribes with (learned from its requests)."""

    language: str | None = None
    hotwords: tuple[str, ...] | None = None


@dataclass(eq=False, slots=True)
class EarlyJob:
    audio: Audio
    language: str | None
    hotwords: tuple[str, ...] | None
    hints: TranscriptHints
    task: asyncio.Task[Transcript]


@dataclass(slots=True)
class EarlyStats:
    started: int = 0
    used: int = 0  # answered a consumer (the STT latency it hid)
    dropped: int = 0  # the caller went on speaking, or nobody asked for that utterance


@dataclass
class EarlyTranscripts:
    """A transcriber that answers from jobs sessions started early (see the module docstring)."""

    inner: Transcriber
    after: float = 0.1  # seconds of quiet inside an utterance before its transcription starts
    stats: EarlyStats = field(default_factory=EarlyStats)
    _adopted: OrderedDict[int, EarlyJob] = field(default_factory=OrderedDict)

    # --- the session's side ----------------------------------------------------------------------

    def start(self, audio: Audio, hints: TranscriptHints) -> EarlyJob:
        """Transcribe `audio` now, as the call's consumer would."""
        kwargs: dict[str, Any] = {"language": hints.language}
        if hints.hotwords is not None:
            kwargs["hotwords"] = list(hints.hotwords)
        task = asyncio.ensure_future(self.inner.transcribe(audio, **kwargs))
        task.add_done_callback(_consume_error)
        self.stats.started += 1
        return EarlyJob(audio, hints.language, hints.hotwords, hints, task)

    def adopt(self, job: EarlyJob, audio: Audio) -> None:
        """`audio` (the utterance the session hands its consumer) is what `job` transcribes."""
        self._adopted[id(audio.pcm)] = EarlyJob(audio, job.language, job.hotwords, job.hints, job.task)
        while len(self._adopted) > KEPT:
            _, old = self._adopted.popitem(last=False)
            self.drop(old)

    def drop(self, job: EarlyJob) -> None:
        """Nobody will want `job`'s transcript (the caller spoke on, or the call is over)."""
        self.stats.dropped += 1
        job.task.cancel()

    def forget(self, audio: Audio) -> None:
        """The session will not hand `audio` to anyone (e.g. the call ended first)."""
        job = self._adopted.pop(id(audio.pcm), None)
        if job is not None and job.audio.pcm is audio.pcm:
            self.drop(job)

    # --- the consumer's side (Transcriber) -------------------------------------------------------

    async def transcribe(self, audio: Audio, *, language: str | None = None, hotwords: list[str] | None = None,
                         **kwargs: Any) -> Transcript:
        job = self._adopted.pop(id(audio.pcm), None)
        if job is not None and job.audio.pcm is audio.pcm:
            wanted = tuple(hotwords) if hotwords is not None else None
            job.hints.language, job.hints.hotwords = language, wanted  # this call's next job asks the same
            if (job.language, job.hotwords) == (language, wanted) and not job.task.cancelled():
                self.stats.used += 1
                return await job.task
            self.drop(job)
        return await self.inner.transcribe(audio, language=language, hotwords=hotwords, **kwargs)


def _consume_error(task: asyncio.Task[Transcript]) -> None:
    """A dropped job's failure is nobody's ("Task exception was never retrieved" otherwise)."""
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()


__all__ = ["EarlyJob", "EarlyStats", "EarlyTranscripts", "TranscriptHints"]
