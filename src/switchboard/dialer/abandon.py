"""Abandoned calls and the rolling abandon rate per campaign.

A call is abandoned when a caller who asked for an operator waits longer than `wait_limit`
(2 s by default, the usual regulatory figure) without one. It is counted the moment the limit
passes (a timer on the running loop, so the virtual clock drives it in simulations), not when the
call ends. The rate is abandons over answered (live) calls in the rolling `window`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from switchboard import clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AbandonEvent:
    call_id: str
    campaign: str
    contact_id: str | None
    waited: float


@dataclass(frozen=True, slots=True)
class AbandonStats:
    campaign: str
    answered: int
    abandoned: int

    @property
    def rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(slots=True)
class _Waiting:
    campaign: str
    contact_id: str | None
    since: float
    timer: asyncio.TimerHandle
    abandoned: bool = False


class AbandonTracker:
    """Counts answered calls and abandons per campaign over a rolling window (seconds).

    `on_abandon` is called once per abandoned call (e.g. to lock the contact out from redials)."""

    def __init__(
        self,
        *,
        wait_limit: float = 2.0,
        window: float = 24 * 3600.0,
        on_abandon: Callable[[AbandonEvent], None] | None = None,
    ) -> None:
        self.wait_limit = wait_limit
        self.window = window
        self.on_abandon = on_abandon
        self._answered: dict[str, deque[float]] = {}
        self._abandoned: dict[str, deque[float]] = {}
        self._waiting: dict[str, _Waiting] = {}

    def answered(self, campaign: str) -> None:
        """A live call was answered in `campaign` (the denominator of the rate)."""
        self._answered.setdefault(campaign, deque()).append(clock.monotonic())

    def operator_requested(self, call_id: str, campaign: str, contact_id: str | None = None) -> None:
        """The caller asked for an operator; the wait-limit timer starts now."""
        if call_id in self._waiting:
            return
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.wait_limit, self._expire, call_id)
        self._waiting[call_id] = _Waiting(campaign, contact_id, clock.monotonic(), timer)

    def operator_connected(self, call_id: str) -> bool:
        """An operator took the call. Returns True if it had already counted as abandoned."""
        waiting = self._waiting.pop(call_id, None)
        if waiting is None:
            return False
        waiting.timer.cancel()
        return waiting.abandoned

    def call_ended(self, call_id: str) -> bool:
        """The call ended (any reason). A caller who hung up within the limit is not an abandon.
        Returns True if the call counted as abandoned."""
        return self.operator_connected(call_id)

    def _expire(self, call_id: str) -> None:
        waiting = self._waiting.get(call_id)
        if waiting is None or waiting.abandoned:
            return
        waiting.abandoned = True
        now = clock.monotonic()
        self._abandoned.setdefault(waiting.campaign, deque()).append(now)
        event = AbandonEvent(call_id, waiting.campaign, waiting.contact_id, now - waiting.since)
        log.info(  # counted in the abandon rate; one INFO line per event (not a fault)
            "abandoned call %s in campaign %s (no operator after %.1fs)",
            call_id,
            waiting.campaign,
            event.waited,
        )
        if self.on_abandon is not None:
            try:
                self.on_abandon(event)
            except Exception:  # a failing listener must not stop the count
                log.exception("abandon listener failed for call %s", call_id)

    def _prune(self, events: deque[float] | None, now: float) -> int:
        if events is None:
            return 0
        cutoff = now - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        return len(events)

    def stats(self, campaign: str) -> AbandonStats:
        now = clock.monotonic()
        answered = self._prune(self._answered.get(campaign), now)
        abandoned = self._prune(self._abandoned.get(campaign), now)
        return AbandonStats(campaign, answered, abandoned)

    def rate(self, campaign: str) -> float:
        return self.stats(campaign).rate

    def campaigns(self) -> list[str]:
        return sorted(set(self._answered) | set(self._abandoned))
