"""What every cloud speech provider shares: one request with retries and error classification.

429 and 5xx (and dropped connections) are retried with exponential backoff, honouring
`Retry-After`; authentication, quota and balance errors become `ProviderFailure` at once, because
retrying them only burns time while the caller waits. Each provider supplies `classify` to read its
own error bodies (OpenAI's `insufficient_quota` is a 429 that must not be retried, for example).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx

from switchboard.speech.base import ProviderFailure

log = logging.getLogger(__name__)

RETRY = "retry"
Classifier = Callable[[httpx.Response], "Exception | str | None"]


def error_text(resp: httpx.Response, limit: int = 300) -> str:
    try:
        return resp.text[:limit]
    except (UnicodeDecodeError, LookupError):  # undecodable body
        return f"<{len(resp.content)} bytes>"


def body_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


def default_classify(provider: str, resp: httpx.Response) -> Exception | str:
    status = resp.status_code
    if status == 429 or status >= 500:
        return RETRY
    if status in (401, 403):
        return ProviderFailure(provider, f"authentication failed ({status}): {error_text(resp)}")
    if status == 402:
        return ProviderFailure(provider, f"payment required ({status}): {error_text(resp)}")
    return ProviderFailure(provider, f"HTTP {status}: {error_text(resp)}")


class HttpClient:
    def __init__(self, provider: str, *, timeout: float = 30.0, attempts: int = 3, backoff: float = 0.5,
                 max_backoff: float = 8.0, classify: Classifier | None = None) -> None:
        self.provider = provider
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.classify = classify

    def _delay(self, attempt: int, resp: httpx.Response | None) -> float:
        if resp is not None:
            retry_after = resp.headers.get("retry-after")
            if retry_after:
                try:
                    return min(float(retry_after), self.max_backoff)
                except ValueError:
                    pass
        return min(self.backoff * (2 ** attempt), self.max_backoff)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; returns a 2xx response or raises ProviderFailure / the classifier's error."""
        last = ""
        for attempt in range(self.attempts):
            resp: httpx.Response | None = None
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    resp = await client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                outcome: Exception | str | None = None
                if self.classify is not None:
                    outcome = self.classify(resp)
                if outcome is None:
                    if resp.status_code < 400:
                        return resp
                    outcome = default_classify(self.provider, resp)
                if isinstance(outcome, Exception):
                    raise outcome
                last = f"HTTP {resp.status_code}: {error_text(resp, 120)}"
            if attempt + 1 < self.attempts:
                delay = self._delay(attempt, resp)
                log.warning("%s: %s; retry %d/%d in %.2f s", self.provider, last, attempt + 1,
                            self.attempts - 1, delay)
                await asyncio.sleep(delay)
        raise ProviderFailure(self.provider, f"gave up after {self.attempts} attempts: {last}",
                              retryable=True)
