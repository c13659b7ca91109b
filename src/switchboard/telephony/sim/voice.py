"""Simulated callers who really speak: their words are synthesized (Piper for English, eSpeak NG
for other languages) and sent through a phone line (8 kHz μ-law, optional noise), as a real caller
reaches us. `SimCallerPort` plays them into the voice layer frame by frame; VAD and STT then run on
them exactly as on a real call."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from switchboard.speech import audio as A
from switchboard.speech.audio import Audio
from switchboard.speech.base import TTS
from switchboard.telephony.sim.script import CallerScript


@dataclass
class CallerVoices:
    """`voices` maps a language to a TTS; `"*"` is the default. Each utterance is synthesized once."""

    voices: dict[str, TTS]
    noise_snr_db: float | None = None
    _cache: dict[str, Audio] = field(default_factory=dict)

    def tts_for(self, language: str | None) -> TTS:
        return self.voices.get(language or "", self.voices["*"])

    async def speech(self, text: str, script: CallerScript, language: str | None = None) -> Audio:
        """`text` as the caller's voice arrives over the phone line (8 kHz PCM16)."""
        language = language or script.language
        key = f"{language}|{script.voice}|{text}"
        cached = self._cache.get(key)
        if cached is None:
            raw = await self.tts_for(language).synthesize(text, voice=script.voice, language=language)
            snr = script.noise_snr_db if script.noise_snr_db is not None else self.noise_snr_db
            seed = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
            cached = await asyncio.to_thread(A.through_phone_line, raw, snr_db=snr, seed=seed)
            self._cache[key] = cached
        return cached
