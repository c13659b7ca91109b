"""One async client for any OpenAI-compatible chat endpoint (GapGPT, OpenAI, Ollama, vLLM, llama.cpp).

Why our own layer over the `openai` SDK: calls need one place for the parallelism limit, retries
that tell a rate limit (retry) from an exhausted quota (stop), a provider-failure classification the
dialer counts, per-call token accounting and a small response cache. Nothing here raises anything
but `LLMError` subclasses and `ProviderFailure`, so callers can fall back without crashing a call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import openai
from openai import AsyncOpenAI

from switchboard.clock import monotonic, real_io
from switchboard.observability import metrics
from switchboard.speech.base import ProviderFailure

log = logging.getLogger(__name__)

Role = Literal["critical", "cheap"]
Message = dict[str, Any]

_QUOTA_WORDS = ("quota", "balance", "credit", "billing", "insufficient", "payment")


class LLMError(Exception):
    """The model could not give a usable answer (bad request, malformed reply, ...)."""


class LLMTimeout(LLMError):
    """No answer within the caller's deadline."""


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it (may be invalid)

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError when the model wrote invalid JSON."""
        if not self.arguments.strip():
            return {}
        value = json.loads(self.arguments)
        if not isinstance(value, dict):
            raise ValueError("tool arguments must be a JSON object")  # noqa: TRY004 - bad model output
        return value

    def as_message_part(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True)
class ChatResult:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    cached: bool = False

    def as_assistant_message(self) -> Message:
        msg: Message = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            msg["tool_calls"] = [tc.as_message_part() for tc in self.tool_calls]
        return msg


@dataclass(slots=True)
class TextDelta:
    """A piece of streamed assistant text."""

    text: str


@dataclass(slots=True)
class StreamEnd:
    """The end of a stream: the whole reply, tool calls assembled from their deltas."""

    result: ChatResult


@dataclass(slots=True)
class Usage:
    """Token usage of one phone call (or one job): pass the same object to every request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cache_hits: int = 0
    errors: int = 0
    by_model: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, result: ChatResult) -> None:
        self.requests += 1
        if result.cached:
            self.cache_hits += 1
            return
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        per = self.by_model.setdefault(result.model, {"prompt_tokens": 0, "completion_tokens": 0})
        per["prompt_tokens"] += result.prompt_tokens
        per["completion_tokens"] += result.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "requests": self.requests,
                "cache_hits": self.cache_hits, "errors": self.errors, "by_model": self.by_model}


def _error_info(exc: openai.APIStatusError) -> tuple[str, str, str]:
    """(type, code, message) from the OpenAI error body, whatever shape the server used."""
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(err, dict):
        err = {"message": str(err)}
    return (str(err.get("type") or ""), str(err.get("code") or ""),
            str(err.get("message") or exc.message or ""))


def classify_status_error(exc: openai.APIStatusError, provider: str) -> ProviderFailure | None:
    """Quota, balance and auth errors are provider failures (not retried); None = something else."""
    etype, code, message = _error_info(exc)
    text = f"{etype} {code} {message}".lower()
    status = exc.status_code
    if status in (401, 403):
        return ProviderFailure(provider, f"auth ({status}): {message[:200]}")
    if status == 402 or (status == 429 and any(w in text for w in _QUOTA_WORDS)):
        return ProviderFailure(provider, f"quota ({status}): {message[:200]}")
    return None


class LLMClient:
    """Chat completions with two models by role, a parallelism limit, retries, streaming and a cache."""

    def __init__(self, *, base_url: str, api_key: str = "", model_critical: str, model_cheap: str,
                 timeout: float = 8.0, max_retries: int = 2, max_parallel: int = 8,
                 cache_ttl: float = 300.0, cache_size: int = 1024, provider: str = "llm",
                 backoff_base: float = 0.5, backoff_max: float = 8.0,
                 on_provider_failure: Callable[[ProviderFailure], None] | None = None) -> None:
        self.base_url = base_url
        self._api_key = api_key or "none"  # local servers (Ollama, llama.cpp) need no key
        self.models: dict[Role, str] = {"critical": model_critical, "cheap": model_cheap}
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_parallel = max_parallel
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.provider = provider
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_provider_failure = on_provider_failure
        self._cache: OrderedDict[str, tuple[float, ChatResult]] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdk: AsyncOpenAI | None = None
        self._sem: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> LLMClient | None:
        """The configured client, or None when no endpoint is set (callers then use fallbacks).

        `LLM_BASE_URL`/`LLM_API_KEY` win; otherwise `GAPGPT_BASE_URL`/`GAPGPT_API_KEY`."""
        if settings.llm_base_url:
            base, key, provider = settings.llm_base_url, settings.llm_api_key, "llm"
        elif settings.gapgpt_base_url:
            base, key, provider = settings.gapgpt_base_url, settings.gapgpt_api_key, "gapgpt"
        else:
            return None
        return cls(base_url=base, api_key=key.get_secret_value(), provider=provider,
                   model_critical=settings.llm_model_critical, model_cheap=settings.llm_model_cheap,
                   timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                   max_parallel=settings.max_parallel_llm,
                   cache_ttl=float(settings.llm_cache_ttl_seconds), **kwargs)

    # --- plumbing ---------------------------------------------------------------------------
    def _bind(self) -> tuple[AsyncOpenAI, asyncio.Semaphore]:
        """SDK client and semaphore belong to one event loop; rebuild them on a new loop."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._sdk is None or self._sem is None:
            self._loop = loop
            self._sdk = AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0,
                                    timeout=self.timeout)
            self._sem = asyncio.Semaphore(self.max_parallel)
        return self._sdk, self._sem

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    def model_for(self, role: Role) -> str:
        return self.models[role]

    def _fail(self, failure: ProviderFailure, usage: Usage | None) -> ProviderFailure:
        if usage is not None:
            usage.errors += 1
        if self.on_provider_failure is not None:
            try:
                self.on_provider_failure(failure)
            except Exception:  # a broken observer must not break the call
                log.exception("on_provider_failure callback failed")
        return failure

    def _backoff(self, attempt: int, exc: Exception | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = response.headers.get("retry-after")
            try:
                if retry_after is not None:
                    delay = min(self.backoff_max, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return delay

    async def _with_retries(self, make: Callable[[AsyncOpenAI], Any], usage: Usage | None,
                            deadline: float) -> Any:
        """Run one request under the semaphore, retrying 429 (not quota), 5xx and connection errors."""
        sdk, sem = self._bind()
        attempt = 0
        while True:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise LLMTimeout(f"no answer within the deadline ({self.provider})")
            try:
                async with sem:
                    with real_io():
                        return await asyncio.wait_for(make(sdk), timeout=remaining)
            except TimeoutError as exc:
                raise LLMTimeout(f"no answer within the deadline ({self.provider})") from exc
            except openai.APITimeoutError as exc:
                raise LLMTimeout(f"request timed out ({self.provider})") from exc
            except openai.APIStatusError as exc:
                failure = classify_status_error(exc, self.provider)
                if failure is not None:
                    raise self._fail(failure, usage) from exc
                retryable = exc.status_code == 429 or exc.status_code >= 500
                if not retryable:
                    if usage is not None:
                        usage.errors += 1
                    raise LLMError(f"{self.provider} rejected the request ({exc.status_code}): "
                                   f"{_error_info(exc)[2][:200]}") from exc
                last: Exception = exc
            except openai.APIConnectionError as exc:
                last = exc
            except (openai.OpenAIError, ValueError, TypeError) as exc:  # malformed reply, SDK-side error
                if usage is not None:
                    usage.errors += 1
                raise LLMError(f"{self.provider}: unusable response: {type(exc).__name__}: {exc}") from exc
            if attempt >= self.max_retries:
                status = getattr(last, "status_code", None)
                reason = f"unavailable ({status or 'connection'}) after {attempt + 1} attempts"
                raise self._fail(ProviderFailure(self.provider, reason, retryable=True), usage) from last
            delay = self._backoff(attempt, last)
            attempt += 1
            if monotonic() + delay >= deadline:
                raise LLMTimeout(f"deadline reached while backing off ({self.provider})") from last
            log.info("llm retry %d after %.2fs: %s", attempt, delay, last)
            await asyncio.sleep(delay)

    def _request(self, messages: Sequence[Message], role: Role, model: str | None,
                 tools: Sequence[dict[str, Any]] | None, tool_choice: Any, response_format: Any,
                 temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
        req: dict[str, Any] = {"model": model or self.models[role], "messages": list(messages)}
        if tools:
            req["tools"] = list(tools)
            if tool_choice is not None:
                req["tool_choice"] = tool_choice
        if response_format is not None:
            req["response_format"] = response_format
        if temperature is not None:
            req["temperature"] = temperature
        if max_tokens is not None:
            req["max_tokens"] = max_tokens
        return req

    # --- public -----------------------------------------------------------------------------
    async def chat(self, messages: Sequence[Message], *, role: Role = "critical", model: str | None = None,
                   tools: Sequence[dict[str, Any]] | None = None, tool_choice: Any = None,
                   response_format: Any = None, temperature: float | None = 0.0,
                   max_tokens: int | None = None, timeout: float | None = None,
                   usage: Usage | None = None, cache: bool = True) -> ChatResult:
        """One non-streaming completion. Identical requests within the cache TTL are answered
        from the cache (and counted as cache hits, not tokens)."""
        req = self._request(messages, role, model, tools, tool_choice, response_format, temperature,
                            max_tokens)
        key = hashlib.sha256(json.dumps(req, sort_keys=True, ensure_ascii=False,
                                        default=str).encode()).hexdigest()
        started = monotonic()
        if cache and self.cache_ttl > 0:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > started:
                result = replace(hit[1], cached=True, latency=0.0,
                                 tool_calls=[replace(t) for t in hit[1].tool_calls])
                if usage is not None:
                    usage.add(result)
                return result
        deadline = started + (timeout if timeout is not None else self.timeout)
        resp = await metrics.timed("llm", self.provider,
                                   self._with_retries(lambda sdk: sdk.chat.completions.create(**req), usage, deadline))
        if not getattr(resp, "choices", None):
            raise LLMError(f"{self.provider} answered without choices")
        choice = resp.choices[0]
        msg = choice.message
        calls = [ToolCall(tc.id, tc.function.name, tc.function.arguments or "")
                 for tc in (msg.tool_calls or []) if getattr(tc, "function", None) is not None]
        result = ChatResult(content=msg.content, tool_calls=calls, finish_reason=choice.finish_reason,
                            model=resp.model or req["model"],
                            prompt_tokens=resp.usage.prompt_tokens if resp.usage else 0,
                            completion_tokens=resp.usage.completion_tokens if resp.usage else 0,
                            latency=monotonic() - started)
        if usage is not None:
            usage.add(result)
        if cache and self.cache_ttl > 0:
            self._cache[key] = (monotonic() + self.cache_ttl, result)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    async def stream(self, messages: Sequence[Message], *, role: Role = "critical",
                     model: str | None = None, tools: Sequence[dict[str, Any]] | None = None,
                     tool_choice: Any = None, temperature: float | None = None,
                     max_tokens: int | None = None, timeout: float | None = None,
                     usage: Usage | None = None) -> AsyncIterator[TextDelta | StreamEnd]:
        """Stream a reply: `TextDelta`s as tokens arrive, then one `StreamEnd`.

        `timeout` bounds the wait for the first chunk and then each gap between chunks; retries
        happen only before the first chunk (a half-spoken reply is never repeated)."""
        req = self._request(messages, role, model, tools, tool_choice, None, temperature, max_tokens)
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
        limit = timeout if timeout is not None else self.timeout
        started = monotonic()
        stream = await metrics.timed("llm", self.provider, self._with_retries(
            lambda sdk: sdk.chat.completions.create(**req), usage, started + limit))
        content: list[str] = []
        calls: dict[int, ToolCall] = {}
        finish: str | None = None
        model_name = req["model"]
        prompt_tokens = completion_tokens = 0
        iterator = stream.__aiter__()
        try:
            while True:
                try:
                    with real_io():
                        chunk = await asyncio.wait_for(iterator.__anext__(), timeout=limit)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise LLMTimeout(f"stream stalled for {limit}s ({self.provider})") from exc
                except Exception as exc:
                    raise LLMError(f"stream broke ({self.provider}): {type(exc).__name__}: {exc}") from exc
                model_name = chunk.model or model_name
                if chunk.usage is not None:
                    prompt_tokens = chunk.usage.prompt_tokens or 0
                    completion_tokens = chunk.usage.completion_tokens or 0
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    if delta is None:
                        continue
                    if delta.content:
                        content.append(delta.content)
                        yield TextDelta(delta.content)
                    for tc in delta.tool_calls or []:
                        slot = calls.setdefault(tc.index, ToolCall("", "", ""))
                        if tc.id:
                            slot.id = tc.id
                        if tc.function is not None:
                            if tc.function.name:
                                slot.name += tc.function.name
                            if tc.function.arguments:
                                slot.arguments += tc.function.arguments
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.debug("closing the LLM stream failed", exc_info=True)
        result = ChatResult(content="".join(content) or None,
                            tool_calls=[calls[i] for i in sorted(calls)], finish_reason=finish,
                            model=model_name, prompt_tokens=prompt_tokens,
                            completion_tokens=completion_tokens, latency=monotonic() - started)
        if usage is not None:
            usage.add(result)
        yield StreamEnd(result)


__all__ = ["ChatResult", "LLMClient", "LLMError", "LLMTimeout", "Message", "Role", "StreamEnd",
           "TextDelta", "ToolCall", "Usage", "classify_status_error"]
