"""Offline STT: faster-whisper (CTranslate2, int8 on CPU) with the Whisper model from PyPI packages.

Decoding is tuned for short phone answers: greedy (beam 1), temperature 0 only (the default
fallback ladder took tens of seconds on unclear audio), no timestamps, no conditioning on earlier
text, a token cap and a repetition guard. The model loads once per process and is shared; calls run
on a dedicated thread pool whose size is the concurrency limit, so a long transcription never blocks
the event loop and at most `max_parallel` run at once.

A scenario's hotwords bias recognition through faster-whisper's `hotwords`, not `initial_prompt`:
an initial prompt reads as text already said, and a list such as "بله, آره, نه" came back as the
transcript of "بله حتما" (then read as "no"). Hotwords go into the
decoder's context as hints without being presented as a transcript to continue. They still sit
in the decoder's prompt, so on unclear audio Whisper can read them back ("الو الو" came back as
"آره نه"): a transcript made only of different hotwords is decoded again without them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from switchboard.speech.audio import Audio, resample, to_float
from switchboard.speech.base import Transcript
from switchboard.speech.stt.guard import collapse_repetitions
from switchboard.speech.stt.models import model_dir

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: Path, *, compute_type: str = "int8", num_workers: int = 1) -> Any:
    """The process-wide WhisperModel for `path` (loaded on first call)."""
    from faster_whisper import WhisperModel

    key = (str(path), compute_type)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            started = time.perf_counter()
            model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                                 num_workers=max(1, num_workers))
            log.info("whisper model %s loaded in %.2f s", path.name, time.perf_counter() - started)
            _MODELS[key] = model
        return model


_ARABIC_SCRIPT = {"fa", "ar", "ur", "ps", "ku"}


def hotwords_for(language: str | None, hotwords: list[str] | None) -> list[str]:
    """The hotwords written in the script of `language` (all of them when it is not known): a
    Persian scenario's "بله آره نه" made Whisper hear an English "No, thank you" as "So, thank you"."""
    words = [h.strip() for h in hotwords or [] if h.strip()]
    if not language:
        return words

    def arabic_script(word: str) -> bool:
        return any("\u0600" <= ch <= "\u06ff" for ch in word)

    want_arabic = language in _ARABIC_SCRIPT
    return [w for w in words if arabic_script(w) == want_arabic]


ECHO_SHARE = 0.6  # hint words at least this share of the transcript (with two different ones): an echo


def echoes_hotwords(text: str, hotwords: list[str]) -> bool:
    """True when `text` is mostly the hint list read back rather than the caller: two or more
    different hotwords making up most of it ("الو الو" came back as "آره نه" and was read as "yes";
    the demo's "نه ممنون" as "نه با بله آره نه با بله آره" and sent to an operator). A caller's own
    "نه نه" (one hotword, repeated) is an answer, not an echo. A false alarm costs one unbiased
    decode, a missed echo a caller's answer turned into its opposite."""
    hints = {w for h in hotwords for w in h.split()}
    said = re.sub(r"[^\w\s]", " ", text).split()
    hinted = [w for w in said if w in hints]
    return len(set(hinted)) >= 2 and len(hinted) >= ECHO_SHARE * len(said)


class WhisperSTT:
    name = "whisper"

    def __init__(self, models_dir: Path, *, size: str = "base", max_parallel: int = 2,
                 max_new_tokens: int = 96, max_segments: int = 8, compute_type: str = "int8",
                 default_language: str | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.size = size
        self.max_parallel = max(1, max_parallel)
        self.max_new_tokens = max_new_tokens
        self.max_segments = max_segments
        self.compute_type = compute_type
        self.default_language = default_language or None
        self._executor = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="whisper")
        self._model: Any = None

    def load(self) -> Any:
        """Assemble (first time only) and load the model; safe to call from any thread."""
        if self._model is None:
            path = model_dir(self.models_dir, self.size)
            self._model = load_model(path, compute_type=self.compute_type, num_workers=self.max_parallel)
        return self._model

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    def transcribe_sync(self, audio: Audio, *, language: str | None = None,
                        hotwords: list[str] | None = None) -> Transcript:
        started = time.perf_counter()  # real compute time, also under the simulator's virtual clock
        model = self.load()
        samples = to_float(resample(audio, WHISPER_RATE))
        lang = (language or self.default_language or "").split("-")[0].split("_")[0].lower() or None
        bias_words = hotwords_for(lang, hotwords)
        text, confidence, heard_language = self._decode(model, samples, lang, " ".join(bias_words) or None)
        if bias_words and echoes_hotwords(text, bias_words):
            text, confidence, heard_language = self._decode(model, samples, lang, None)
        return Transcript(text=text, language=heard_language, confidence=round(confidence, 3),
                          latency=time.perf_counter() - started)

    def _decode(self, model: Any, samples: Any, lang: str | None, bias: str | None) -> tuple[str, float, str]:
        segments, info = model.transcribe(
            samples, language=lang, task="transcribe", beam_size=1,
            best_of=1, temperature=0.0, without_timestamps=True, condition_on_previous_text=False,
            hotwords=bias, max_new_tokens=self.max_new_tokens, vad_filter=False)
        texts: list[str] = []
        probs: list[float] = []
        for i, segment in enumerate(segments):
            if i >= self.max_segments:
                break
            texts.append(segment.text.strip())
            probs.append(math.exp(max(segment.avg_logprob, -10.0)))
        text = collapse_repetitions(" ".join(t for t in texts if t))
        return text, (sum(probs) / len(probs) if probs else 0.0), info.language

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None) -> Transcript:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: self.transcribe_sync(audio, language=language, hotwords=hotwords))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
