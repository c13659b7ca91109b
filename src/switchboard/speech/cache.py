"""On-disk TTS cache: the same prompt in the same voice is synthesized once, ever.

Keyed by a hash of provider + voice + language + text, stored as WAV under `TTS_CACHE_DIR`
(two-level fan-out). Writes go through a temp file and a rename, so concurrent calls and crashes
never leave half a file; a corrupt entry is treated as a miss and rewritten.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from switchboard.speech.audio import Audio, concat, read_wav, write_wav
from switchboard.speech.base import TTS

log = logging.getLogger(__name__)


def cache_key(text: str, voice: str | None, language: str | None, provider: str) -> str:
    raw = json.dumps([provider, voice or "", language or "", text], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class CachedTTS:
    """Wraps any `TTS`; `name` stays the inner provider's so callers see who really speaks."""

    def __init__(self, inner: TTS, cache_dir: Path) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.name = inner.name
        self.hits = 0
        self.misses = 0

    @property
    def provider_key(self) -> str:
        return getattr(self.inner, "cache_name", self.inner.name)

    def path_for(self, text: str, voice: str | None, language: str | None) -> Path:
        key = cache_key(text, voice, language, self.provider_key)
        return self.cache_dir / key[:2] / f"{key}.wav"

    def _load(self, path: Path) -> Audio | None:
        try:
            return read_wav(path) if path.exists() else None
        except (OSError, ValueError, EOFError, wave.Error) as exc:
            log.warning("tts cache: unreadable entry %s (%s); re-synthesizing", path.name, exc)
            return None

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        path = self.path_for(text, voice, language)
        cached = await asyncio.to_thread(self._load, path)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        audio = await self.inner.synthesize(text, voice=voice, language=language)
        await asyncio.to_thread(write_wav, path, audio)
        return audio

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        """A hit plays the whole cached text at once; a miss streams from the provider and stores
        the joined result when the stream completes."""
        path = self.path_for(text, voice, language)
        cached = await asyncio.to_thread(self._load, path)
        if cached is not None:
            self.hits += 1
            yield cached
            return
        self.misses += 1
        chunks: list[Audio] = []
        async for chunk in self.inner.stream(text, voice=voice, language=language):
            chunks.append(chunk)
            yield chunk
        if chunks:
            await asyncio.to_thread(write_wav, path, concat(chunks))
