"""Call tokens: what lets a browser place one call, and to what.

`POST /api/v1/calls/token` mints a token scoped to one scenario or one persona; the page sends it
with its SDP offer to `POST /api/v1/webrtc/offer`, which consumes it. A token is random (256 bits),
short-lived and single use, so a token copied out of a page, a log or a proxy is worth at most one
call within its lifetime. Tokens live in this process's memory: the process that minted a token is
the one that answers the offer and holds the peer connection, so nothing needs sharing.

Anonymous minting (a "Call us" button on a public web page) is limited per client address with a
sliding one-minute window, and the number of outstanding tokens is bounded, so nobody can fill the
process's memory with tokens.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ScopeKind = Literal["scenario", "persona"]


@dataclass(frozen=True, slots=True)
class CallScope:
    """What one token allows: a call to one scenario's inbound flow or one persona."""

    kind: ScopeKind
    name: str
    caller: str  # who minted it: a user or API token name, or "anonymous"
    language: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: float
    scope: CallScope


class TokenError(Exception):
    """The token is unknown, expired or already used (one message for all: no oracle)."""


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many call tokens; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class CallTokens:
    def __init__(self, *, ttl: float = 120.0, max_outstanding: int = 10_000, anonymous_per_minute: int = 6,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_outstanding = max_outstanding
        self.anonymous_per_minute = anonymous_per_minute
        self._clock = clock
        self._tokens: dict[str, tuple[float, CallScope]] = {}
        self._anonymous: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._tokens)

    def mint(self, scope: CallScope, *, client: str | None = None) -> IssuedToken:
        """A new token for `scope`. Anonymous callers (`client` = their address) are rate limited."""
        now = self._clock()
        self._expire()
        if client is not None:
            self._limit(client, now)
        if len(self._tokens) >= self.max_outstanding:
            raise RateLimited(self.ttl)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (now + self.ttl, scope)
        return IssuedToken(token, self.ttl, scope)

    def consume(self, token: str) -> CallScope:
        """The token's scope; the token is spent whatever happens next."""
        self._expire()
        for known in list(self._tokens):  # constant-time comparison against every live token
            if hmac.compare_digest(known.encode(), token.encode()):
                _, scope = self._tokens.pop(known)
                return scope
        raise TokenError("unknown, expired or already used call token")

    def _limit(self, client: str, now: float) -> None:
        window = self._anonymous.setdefault(client, deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.anonymous_per_minute:
            raise RateLimited(max(1.0, window[0] + 60.0 - now))
        window.append(now)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, (until, _) in self._tokens.items() if until <= now]:
            del self._tokens[token]
        for client in [c for c, w in self._anonymous.items() if not w or w[-1] <= now - 60.0]:
            del self._anonymous[client]
