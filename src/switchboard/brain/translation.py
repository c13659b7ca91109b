"""Translation between the caller's language and the model's working language.

A persona may talk with a caller in a language its model handles poorly (a small local model is
good at English only): the caller's words are translated into the working language before they
reach the model, and each reply sentence is translated back before it is spoken. Every
translation's latency is measured and logged on the turn (`translation_ms`), because it adds to
the time the caller waits.

Providers, chosen by `TRANSLATION_PROVIDER`:
* `none` — no translation: the model works in the caller's language (the default);
* `passthrough` — the pipeline without a translator (text unchanged), to measure its cost;
* `libretranslate` — LibreTranslate's documented HTTP API (`POST /translate` with `q`, `source`,
  `target`, `format`, `api_key`; answer `{"translatedText": ...}`), self-hosted or any provider
  that speaks it.
No PyPI package ships a complete offline Persian/Arabic <-> English model (Argos Translate and
its front-ends download their models at run time), so there is no offline translator here.
A failed translation never breaks the call: the text goes on untranslated and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from switchboard.clock import real_io

log = logging.getLogger(__name__)


class TranslationError(Exception):
    """The provider could not translate (unreachable, error status, malformed answer)."""


@dataclass(frozen=True, slots=True)
class Translation:
    text: str
    source: str
    target: str
    provider: str
    latency: float  # seconds
    ok: bool = True


class Translator(Protocol):
    name: str

    async def translate(self, text: str, *, source: str, target: str) -> Translation: ...


class Passthrough:
    name = "passthrough"

    async def translate(self, text: str, *, source: str, target: str) -> Translation:
        started = time.perf_counter()
        return Translation(text, source, target, self.name, time.perf_counter() - started)


class LibreTranslate:
    """LibreTranslate's `/translate` endpoint."""

    name = "libretranslate"

    def __init__(self, base_url: str, *, api_key: str = "", timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not base_url:
            raise ValueError("TRANSLATION_URL is not set")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._transport = transport

    async def translate(self, text: str, *, source: str, target: str) -> Translation:
        started = time.perf_counter()
        body: dict[str, Any] = {"q": text, "source": source, "target": target, "format": "text"}
        if self.api_key:
            body["api_key"] = self.api_key
        try:
            with real_io():
                async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as http:
                    resp = await http.post(f"{self.base_url}/translate", json=body)
        except httpx.HTTPError as exc:
            raise TranslationError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            try:
                detail = resp.json().get("error", resp.text)
            except ValueError:
                detail = resp.text
            raise TranslationError(f"{self.name}: {resp.status_code}: {str(detail)[:200]}")
        try:
            translated = resp.json()["translatedText"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TranslationError(f"{self.name}: malformed answer: {resp.text[:200]}") from exc
        if not isinstance(translated, str):
            raise TranslationError(f"{self.name}: translatedText is not a string")
        return Translation(translated, source, target, self.name, time.perf_counter() - started)


async def translate_or_keep(translator: Translator, text: str, *, source: str, target: str) -> Translation:
    """The translation, or the text unchanged (ok=False) when the provider failed."""
    if source == target or not text.strip():
        return Translation(text, source, target, "same-language", 0.0)
    started = time.perf_counter()
    try:
        return await translator.translate(text, source=source, target=target)
    except TranslationError as exc:
        log.warning("translation %s->%s failed, kept the original: %s", source, target, exc)
        return Translation(text, source, target, translator.name, time.perf_counter() - started, ok=False)


def build_translator(settings: Any) -> Translator | None:
    provider = settings.translation_provider
    if provider == "none":
        return None
    if provider == "passthrough":
        return Passthrough()
    if provider == "libretranslate":
        return LibreTranslate(settings.translation_url, api_key=settings.translation_api_key.get_secret_value(),
                              timeout=settings.translation_timeout)
    raise ValueError(f"unknown TRANSLATION_PROVIDER {provider!r}; choose none, passthrough or libretranslate")


__all__ = ["LibreTranslate", "Passthrough", "Translation", "TranslationError", "Translator", "build_translator",
           "translate_or_keep"]
