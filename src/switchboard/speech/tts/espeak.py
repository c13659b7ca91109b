"""eSpeak NG in-process through ctypes, with the library and voice data from `espeakng-loader`.

Milliseconds per sentence and every language the project needs (fa, ar, en); robotic, but always
available offline. The C library keeps global state, so synthesis is serialised with a lock and run
in a worker thread.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import AsyncIterator

import numpy as np

from switchboard.speech.tts.text import split_sentences
from switchboard.speech.audio import Audio

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)

# Language code -> eSpeak voice name.
VOICES = {"en": "en-us", "fa": "fa", "ar": "ar", "de": "de", "fr": "fr", "es": "es", "tr": "tr"}


class _Engine:
    """The process-wide eSpeak instance (the library supports exactly one)."""

    _instance: _Engine | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        self.lock = threading.Lock()
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_Synth.restype = ctypes.c_int
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data at {data.decode()}")
        self.sample_rate = int(rate)
        self._chunks: list[bytes] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Engine:
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = _Engine()
            return cls._instance

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def synth(self, text: str, voice: str, rate_wpm: int | None) -> bytes:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak has no voice {voice!r}")
            if rate_wpm:
                self.lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
            self._chunks = []
            data = text.encode("utf-8") + b"\x00"
            buf = ctypes.create_string_buffer(data)
            err = self.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed ({err})")
            out = b"".join(self._chunks)
            self._chunks = []
            return out


class EspeakTTS:
    """`TTS` on eSpeak NG; output is 22,050 Hz PCM16."""

    name = "espeak"

    def __init__(self, *, default_language: str = "en", rate_wpm: int | None = None) -> None:
        self.default_language = default_language
        self.rate_wpm = rate_wpm
        self._engine: _Engine | None = None

    def _get_engine(self) -> _Engine:
        if self._engine is None:
            self._engine = _Engine.get()
        return self._engine

    def voice_for(self, voice: str | None, language: str | None) -> str:
        if voice:
            return voice
        lang = (language or self.default_language or "en").lower()
        return VOICES.get(lang, VOICES.get(lang.split("-")[0], lang))

    def synthesize_sync(self, text: str, *, voice: str | None = None,
                        language: str | None = None) -> Audio:
        engine = self._get_engine()
        pcm = engine.synth(text, self.voice_for(voice, language), self.rate_wpm)
        return Audio(_trim_silence(pcm), engine.sample_rate)

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        return await asyncio.to_thread(self.synthesize_sync, text, voice=voice, language=language)

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence, voice=voice, language=language)


def _trim_silence(pcm: bytes, threshold: int = 64, keep: int = 1100) -> bytes:
    """Drop eSpeak's long trailing silence (keep ~50 ms) so sentences join naturally."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return pcm
    end = min(samples.size, int(loud[-1]) + keep)
    return samples[:end].tobytes()
