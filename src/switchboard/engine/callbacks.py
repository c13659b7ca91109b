"""Call backs a flow or an AI persona books ("all our operators are busy, we will call you back"):
the request the engine hands to whoever stores and dials them (`CallbackScheduler`; the dialer's
`FollowUps` in production, `MemoryCallbacks` in simulations and flow tests)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(slots=True)
class CallbackRequest:
    phone: str
    due_at: datetime  # aware UTC; calling hours still apply when it is dialed
    scenario: str | None = None  # None: the scenario of the call that booked it
    priority: int = 10  # higher first; fresh contacts are 0
    reason: str = ""
    call_id: str | None = None  # the call that booked it
    number_id: str | None = None  # the panel's id of the contact, when there is one
    name: str | None = None
    source: str = "flow"  # flow | persona | api
    max_attempts: int = 3
    details: dict[str, object] = field(default_factory=dict)
    # Set when the call that books it is itself a call back: that call back is moved (one more
    # attempt of it), never a new one booked, so "all busy again" cannot chain call backs forever.
    rebook: int | None = None


class CallbackScheduler(Protocol):
    async def schedule(self, request: CallbackRequest) -> str:
        """Store the request; returns its id (e.g. CB-12)."""
        ...


class MemoryCallbacks:
    """Keeps requests in memory (simulations, flow tests): nothing is dialed."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, CallbackRequest]] = []
        self._ids = itertools.count(1)

    async def schedule(self, request: CallbackRequest) -> str:
        callback_id = f"CB-{next(self._ids)}"
        self.requests.append((callback_id, request))
        return callback_id
