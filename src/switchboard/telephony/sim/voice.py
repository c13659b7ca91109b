"""Simulated callers who really speak: their words are synthesized (Piper for English, eSpeak NG
for other languages), sent through a phone line (8 kHz mu-law, optional noise), padded with the
silence a caller leaves, and cut into one utterance by the VAD, exactly as a streaming backend
hears a real caller. The engine then runs STT on what comes out."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Callable

from switchboard.speech import audio as A
from switchboard.speech.base import TTS, VAD
from switchboard.speech.vad.segment import segment_utterance
from switchboard.telephony.call import Audio
from switchboard.telephony.sim.script import CallerScript

PHONE_RATE = 8000


@dataclass
class CallerVoices:
    """Turns a reply into the audio one `record` hears. `voices` maps a language to a TTS;
    `"*"` is the default."""

    voices: dict[str, TTS]
    make_vad: Callable[[int], VAD]
    noise_snr_db: float | None = None
    _cache: dict[str, Audio] = field(default_factory=dict)

    def tts_for(self, language: str | None) -> TTS:
        return self.voices.get(language or "", self.voices["*"])

    async def _speech(self, text: str, script: CallerScript, language: str | None) -> Audio:
        key = f"{language}|{script.voice}|{text}"
        cached = self._cache.get(key)
        if cached is None:
            tts = self.tts_for(language)
            raw = await tts.synthesize(text, voice=script.voice, language=language)
            snr = script.noise_snr_db if script.noise_snr_db is not None else self.noise_snr_db
            seed = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
            cached = await asyncio.to_thread(A.through_phone_line, raw, snr_db=snr, seed=seed)
            self._cache[key] = cached
        return cached

    async def __call__(self, text: str | None, script: CallerScript, *, delay: float, max_duration: float,
                       max_silence: float, language: str | None = None) -> Audio:
        """The utterance the VAD cuts from `delay` s of line silence, the caller's words (none for
        a silent caller) and the trailing silence."""
        parts = [A.silence(delay, PHONE_RATE)]
        if text:
            parts.append(await self._speech(text, script, language or script.language))
        parts.append(A.silence(max_silence + 1.0, PHONE_RATE))
        stream = A.concat(parts)

        async def frames() -> AsyncIterator[bytes]:
            for frame in A.frames(stream, ms=20):
                yield frame

        return await segment_utterance(frames(), self.make_vad(PHONE_RATE), max_duration=max_duration,
                                       max_silence=max(max_silence, delay + 0.5))
