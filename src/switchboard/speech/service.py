"""`SpeechService`: the one object the engine and the backends use for speech.

It owns the configured STT/TTS, the concurrency limits (`MAX_PARALLEL_STT` / `MAX_PARALLEL_TTS`)
and the pre-STT pipeline: empty-audio rule (-> `EmptyAudio`, i.e. the caller hung up), then
enhancement with the original and enhanced copies kept for review.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from collections.abc import AsyncIterator

from switchboard.settings import Settings
from switchboard.speech.base import STT, TTS, VAD, Transcript
from switchboard.speech.empty import check_not_empty
from switchboard.speech.enhance import Enhancer
from switchboard.speech.registry import build_stt, build_stt_by_language, build_tts, build_vad
from switchboard.speech.audio import Audio

log = logging.getLogger(__name__)


@dataclass
class SttStats:
    """Transcriptions so far and how long they waited for a slot of the shared STT pool."""

    count: int = 0
    queued_total: float = 0.0
    queued_max: float = 0.0
    busy_total: float = 0.0

    def add(self, transcript: Transcript) -> None:
        self.count += 1
        self.queued_total += transcript.queued
        self.queued_max = max(self.queued_max, transcript.queued)
        self.busy_total += transcript.latency


class SpeechService:
    def __init__(self, stt: STT, tts: TTS, *, settings: Settings | None = None,
                 enhancer: Enhancer | None = None, max_parallel_stt: int = 2,
                 max_parallel_tts: int = 4, default_language: str | None = None,
                 stt_by_language: dict[str, STT] | None = None) -> None:
        self.stt = stt
        self.stt_by_language = dict(stt_by_language or {})  # e.g. {"en": moonshine}; others use `stt`
        self.stats = SttStats()
        self.tts = tts
        self.settings = settings
        self.enhancer = enhancer
        self.default_language = default_language or None
        self._stt_slots = asyncio.Semaphore(max(1, max_parallel_stt))
        self._tts_slots = asyncio.Semaphore(max(1, max_parallel_tts))

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechService:
        enhancer = Enhancer(settings.recordings_dir, denoise_audio=True) if settings.speech_enhance else None
        return cls(build_stt(settings), build_tts(settings), settings=settings, enhancer=enhancer,
                   max_parallel_stt=settings.max_parallel_stt, max_parallel_tts=settings.max_parallel_tts,
                   default_language=settings.stt_language or None,
                   stt_by_language=build_stt_by_language(settings))

    def vad(self, sample_rate: int = 8000) -> VAD:
        """A fresh VAD per call (VADs hold stream state); needs settings."""
        if self.settings is None:
            raise RuntimeError("SpeechService.vad needs settings; build it with from_settings()")
        return build_vad(self.settings, sample_rate)

    def stt_for(self, language: str | None) -> STT:
        """The STT for a caller speaking `language` (its base tag: en-US -> en)."""
        base = (language or self.default_language or "").split("-")[0].split("_")[0].lower()
        return self.stt_by_language.get(base, self.stt)

    async def warm_up(self) -> None:
        """Load local models now rather than on the first caller's answer."""
        for stt in {id(s): s for s in (self.stt, *self.stt_by_language.values())}.values():
            warm = getattr(stt, "warm_up", None)
            if callable(warm):
                await warm()

    async def transcribe(self, audio: Audio | None, *, language: str | None = None,
                         hotwords: list[str] | None = None, name: str | None = None) -> Transcript:
        """Raises `EmptyAudio` for silent/short audio; `name` (e.g. "<call_id>-<step>") keeps the
        original and enhanced WAVs under the recordings directory."""
        audio = check_not_empty(audio)
        if self.enhancer is not None:
            audio = (await self.enhancer.process(audio, name)).audio
        language = language or self.default_language
        stt = self.stt_for(language)
        waited = time.perf_counter()  # real time: under the simulator's virtual clock too
        async with self._stt_slots:
            transcript = await stt.transcribe(audio, language=language, hotwords=hotwords)
            transcript.queued = max(0.0, time.perf_counter() - waited - transcript.latency)
        self.stats.add(transcript)
        log.debug("stt %s: %r (%.2f s, queued %.2f s)", stt.name, transcript.text, transcript.latency,
                  transcript.queued)
        return transcript

    async def synthesize(self, text: str, *, language: str | None = None,
                         voice: str | None = None) -> Audio:
        async with self._tts_slots:
            return await self.tts.synthesize(text, voice=voice, language=language or self.default_language)

    async def stream(self, text: str, *, language: str | None = None,
                     voice: str | None = None) -> AsyncIterator[Audio]:
        """Sentence by sentence; the TTS slot is held while each chunk is produced, not while the
        consumer plays it."""
        iterator = self.tts.stream(text, voice=voice, language=language or self.default_language).__aiter__()
        try:
            while True:
                async with self._tts_slots:
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        return
                yield chunk
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()  # a barge-in stops synthesis of the remaining sentences
