"""Prometheus metrics: what an operator watches on a dashboard (calls by result, live calls, dial
outcomes, provider failures, whether dialing is paused, the outbox backlog, and STT / LLM / TTS
latency and errors). Served at /metrics by the panel server (a `read` token scrapes it)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app

REGISTRY = CollectorRegistry(auto_describe=True)
T = TypeVar("T")

CALLS = Counter("switchboard_calls_total", "Finished calls by direction, scenario and result",
                ["direction", "scenario", "result"], registry=REGISTRY)
ACTIVE_CALLS = Gauge("switchboard_active_calls", "Calls in progress", ["direction"], registry=REGISTRY)
ORIGINATIONS = Counter("switchboard_originations_total", "Outbound originations by line", ["line"],
                       registry=REGISTRY)
PROVIDER_FAILURES = Counter("switchboard_provider_failures_total", "Provider failures by kind", ["kind"],
                            registry=REGISTRY)
DIALER_PAUSED = Gauge("switchboard_dialer_paused", "1 while dialing is paused (failure threshold or a person)",
                      registry=REGISTRY)
ABANDON_RATE = Gauge("switchboard_abandon_rate", "Rolling abandon rate per campaign (scenario)", ["campaign"],
                     registry=REGISTRY)
CALL_SECONDS = Counter("switchboard_call_seconds_total", "Seconds of finished calls", ["direction"],
                       registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("switchboard_outbox_backlog", "Results waiting for delivery to the panel",
                       registry=REGISTRY)

# Latency of one provider request: STT per utterance, LLM to the first byte (streams) or the whole
# answer, TTS per synthesis (streams: to the first chunk).
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0)
PROVIDER_SECONDS = {
    kind: Histogram(f"switchboard_{kind}_seconds", f"{kind.upper()} request latency by provider", ["provider"],
                    buckets=_BUCKETS, registry=REGISTRY)
    for kind in ("stt", "llm", "tts")
}
PROVIDER_ERRORS = Counter("switchboard_provider_errors_total", "STT / LLM / TTS requests that failed",
                          ["kind", "provider", "error"], registry=REGISTRY)


def result_label(result: str) -> str:
    """`failed:<reason>` keeps its reason (a small, fixed set in practice) but is cut to a sane length."""
    return result[:48]


def observe(kind: str, provider: str, seconds: float) -> None:
    PROVIDER_SECONDS[kind].labels(provider[:40]).observe(max(0.0, seconds))


def error(kind: str, provider: str, exc: BaseException) -> None:
    PROVIDER_ERRORS.labels(kind, provider[:40], type(exc).__name__[:40]).inc()


async def timed(kind: str, provider: str, awaitable: Awaitable[T], *, ignore: tuple[type[BaseException], ...] = ()
                ) -> T:
    """Await a provider request, recording its latency, or its failure (exceptions in `ignore`
    are outcomes, not failures, e.g. silence handed to STT)."""
    started = time.perf_counter()
    try:
        result = await awaitable
    except ignore:
        raise
    except Exception as exc:
        error(kind, provider, exc)
        raise
    observe(kind, provider, time.perf_counter() - started)
    return result


class TimedSTT:
    """An STT provider with its requests measured; everything else passes through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        from switchboard.speech.base import EmptyAudio

        return await timed("stt", getattr(self._inner, "name", "stt"), self._inner.transcribe(*args, **kwargs),
                           ignore=(EmptyAudio,))


class TimedTTS:
    """A TTS provider with its syntheses measured (streams: the time to their first chunk)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def synthesize(self, *args: Any, **kwargs: Any) -> Any:
        return await timed("tts", getattr(self._inner, "name", "tts"), self._inner.synthesize(*args, **kwargs))

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        provider = getattr(self._inner, "name", "tts")
        started = time.perf_counter()
        first = True
        try:
            async for chunk in self._inner.stream(*args, **kwargs):
                if first:
                    observe("tts", provider, time.perf_counter() - started)
                    first = False
                yield chunk
        except Exception as exc:
            error("tts", provider, exc)
            raise


def instrument_speech(speech: Any) -> Any:
    """Measure a `SpeechService`'s STT and TTS (the composition root calls this once)."""
    if not isinstance(speech.stt, TimedSTT):
        speech.stt = TimedSTT(speech.stt)
    if not isinstance(speech.tts, TimedTTS):
        speech.tts = TimedTTS(speech.tts)
    return speech


async def refresh_outbox_backlog(store: Any) -> None:
    try:
        OUTBOX_BACKLOG.set(await store.outbox.pending_count())
    except Exception:  # a scrape must still answer when the database hiccups
        pass


def asgi_app():  # type: ignore[no-untyped-def]
    return make_asgi_app(registry=REGISTRY)
