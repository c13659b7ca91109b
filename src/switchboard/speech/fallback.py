"""A cloud TTS with eSpeak behind it: a call must never go silent because a provider is down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx

from switchboard.speech.base import TTS, ProviderFailure
from switchboard.speech.audio import Audio

log = logging.getLogger(__name__)


class FallbackTTS:
    def __init__(self, primary: TTS, fallback: TTS, *, fallback_language: str | None = None) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fallback_language = fallback_language
        self.name = primary.name
        self.cache_name = primary.name
        self.failures = 0

    def _note(self, exc: Exception) -> None:
        self.failures += 1
        log.warning("tts: %s failed (%s); speaking with %s instead", self.primary.name, exc,
                    self.fallback.name)

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        try:
            return await self.primary.synthesize(text, voice=voice, language=language)
        except (ProviderFailure, httpx.HTTPError, OSError) as exc:
            self._note(exc)
        return await self.fallback.synthesize(text, language=language or self.fallback_language)

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        started = False
        try:
            async for chunk in self.primary.stream(text, voice=voice, language=language):
                started = True
                yield chunk
            return
        except (ProviderFailure, httpx.HTTPError, OSError) as exc:
            if started:
                raise
            self._note(exc)
        async for chunk in self.fallback.stream(text, language=language or self.fallback_language):
            yield chunk
