"""In-process line limits: one engine process owns every counter. Time comes from `clock`, so a
simulated day on the virtual clock exercises the same code as production."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from switchboard import clock
from switchboard.dialer.lines import (
    MINUTE,
    Busy,
    DayClock,
    Grant,
    LineLoad,
    OutboundLine,
    ScenarioLimit,
    combine_waits,
    day_key,
    load_order_key,
)

EPS = 1e-9  # float slack when a window boundary is reached exactly
MIN_WAIT = 1e-6  # never ask the loop to sleep for less (a zero sleep would spin)


class TokenBucket:
    """Originations per second, GCRA form: with `burst=1` starts are spaced at least 1/rate apart,
    so no one-second window ever holds more than `rate` starts. `rate <= 0` means unlimited."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._tat = float("-inf")  # theoretical arrival time of the next conforming start

    def wait(self, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        allowed_at = self._tat - (self.burst - 1) * self.interval
        return 0.0 if now >= allowed_at - EPS else max(allowed_at - now, MIN_WAIT)

    def take(self, now: float) -> None:
        if self.rate > 0:
            self._tat = max(self._tat, now) + self.interval


@dataclass(slots=True)
class _LineState:
    active: set[str] = field(default_factory=set)
    waiting_inbound: int = 0
    minute: deque[float] = field(default_factory=deque)
    day: str = ""
    day_count: int = 0

    def prune(self, now: float, date: str) -> None:
        cutoff = now - MINUTE + EPS
        while self.minute and self.minute[0] <= cutoff:
            self.minute.popleft()
        if date != self.day:
            self.day, self.day_count = date, 0


@dataclass(slots=True)
class _ScenarioState:
    active: set[str] = field(default_factory=set)
    minute: deque[float] = field(default_factory=deque)
    day: str = ""
    day_count: int = 0

    def prune(self, now: float, date: str = "") -> None:
        cutoff = now - MINUTE + EPS
        while self.minute and self.minute[0] <= cutoff:
            self.minute.popleft()
        if date and date != self.day:
            self.day, self.day_count = date, 0


class MemoryLineLimiter:
    """`LineLimiter` for a single engine process. The day counter rolls over at local midnight in
    `tz` (the panel's timezone)."""

    def __init__(self, originations_per_second: float = 0.0, *, tz: tzinfo = UTC, burst: int = 1) -> None:
        self.bucket = TokenBucket(originations_per_second, burst)
        self.tz = tz
        self._days = DayClock(tz)
        self._lines: dict[str, _LineState] = {}
        self._scenarios: dict[str, _ScenarioState] = {}
        self._released = asyncio.Event()
        self._tokens = itertools.count(1)
        self._taken: dict[str, tuple[float, str]] = {}  # outbound token -> (start, local date): refunds

    def _line(self, line: OutboundLine) -> _LineState:
        state = self._lines.get(line.id)
        if state is None:
            state = self._lines[line.id] = _LineState()
        return state

    def _scenario(self, name: str) -> _ScenarioState:
        state = self._scenarios.get(name)
        if state is None:
            state = self._scenarios[name] = _ScenarioState()
        return state

    async def acquire_outbound(
        self, lines: Sequence[OutboundLine], scenario: ScenarioLimit | None = None
    ) -> Grant | Busy:
        return self.try_acquire_outbound(lines, scenario)

    def try_acquire_outbound(
        self, lines: Sequence[OutboundLine], scenario: ScenarioLimit | None = None
    ) -> Grant | Busy:
        """Synchronous core of `acquire_outbound` (no awaits, so it is atomic in the loop)."""
        t = clock.monotonic()
        wall = clock.now()
        date, day_left = self._days.at(wall)

        global_wait: float | None = 0.0
        reason = ""
        scen_state = self._scenario(scenario.name) if scenario is not None and scenario.limited else None
        if scenario is not None and scen_state is not None:
            scen_state.prune(t, date)
            if scenario.max_concurrent is not None and len(scen_state.active) >= scenario.max_concurrent:
                global_wait, reason = None, f"scenario {scenario.name} at its concurrent limit"
            elif scenario.per_day is not None and scen_state.day_count >= scenario.per_day:
                global_wait = day_left + MIN_WAIT
                reason = f"scenario {scenario.name} at its per-day limit"
            elif scenario.per_minute is not None and len(scen_state.minute) >= scenario.per_minute:
                global_wait = max(scen_state.minute[0] + MINUTE - t, MIN_WAIT)
                reason = f"scenario {scenario.name} at its per-minute limit"
        if global_wait is not None:
            bucket_wait = self.bucket.wait(t)
            if bucket_wait > global_wait:
                global_wait, reason = bucket_wait, "originations-per-second limit"

        waits: list[float | None] = []
        best: tuple[tuple[float, float, int], OutboundLine, _LineState] | None = None
        for index, line in enumerate(lines):
            state = self._line(line)
            state.prune(t, date)
            limits = line.limits
            if state.waiting_inbound > 0 or len(state.active) >= limits.max_concurrent:
                waits.append(None)
                continue
            wait = 0.0
            if state.day_count >= limits.per_day:
                wait = max(wait, day_left + MIN_WAIT)
            if len(state.minute) >= limits.per_minute:
                wait = max(wait, state.minute[0] + MINUTE - t, MIN_WAIT)
            waits.append(wait)
            if wait == 0.0:
                key = load_order_key(len(state.active), limits, len(state.minute), index)
                if best is None or key < best[0]:
                    best = (key, line, state)

        if global_wait == 0.0 and best is not None:
            _, line, state = best
            token = f"m{next(self._tokens)}"
            state.active.add(token)
            state.minute.append(t)
            state.day_count += 1
            if scen_state is not None:
                scen_state.active.add(token)
                scen_state.minute.append(t)
                scen_state.day_count += 1
            self.bucket.take(t)
            self._taken[token] = (t, date)
            return Grant(
                line=line,
                token=token,
                direction="outbound",
                at=wall,
                scenario=scenario.name if scenario else None,
            )
        if not reason:
            reason = "no line can take a call now" if lines else "no outbound lines"
        return Busy(retry_after=combine_waits(global_wait, waits), reason=reason)

    def seed_day_count(self, line: OutboundLine, count: int) -> None:
        """Start-up: carry today's originations on `line` (from the calls table) over a restart, so
        the per-day limit still holds; in-process counters otherwise begin at zero."""
        state = self._line(line)
        state.prune(clock.monotonic(), self._days.at(clock.now())[0])
        state.day_count = max(state.day_count, count)

    async def acquire_inbound(self, line: OutboundLine, timeout: float | None = None) -> Grant | None:
        state = self._line(line)
        token = f"i{next(self._tokens)}"
        if state.waiting_inbound == 0 and len(state.active) < line.limits.max_concurrent:
            state.active.add(token)
            return Grant(line=line, token=token, direction="inbound", at=clock.now())
        deadline = None if timeout is None else clock.monotonic() + timeout
        state.waiting_inbound += 1
        try:
            while True:
                if len(state.active) < line.limits.max_concurrent:
                    state.active.add(token)
                    return Grant(line=line, token=token, direction="inbound", at=clock.now())
                remaining = None if deadline is None else deadline - clock.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                await self.wait_for_release(remaining)
        finally:
            state.waiting_inbound -= 1

    async def release(self, grant: Grant) -> None:
        self.release_now(grant)

    async def refund(self, grant: Grant) -> None:
        taken = self._taken.pop(grant.token, None)
        state = self._lines.get(grant.line.id)
        if taken is not None and state is not None and grant.token in state.active:
            t, date = taken
            if t in state.minute:
                state.minute.remove(t)
            if state.day == date:
                state.day_count = max(0, state.day_count - 1)
            scen = self._scenarios.get(grant.scenario) if grant.scenario is not None else None
            if scen is not None:
                if t in scen.minute:
                    scen.minute.remove(t)
                if scen.day == date:
                    scen.day_count = max(0, scen.day_count - 1)
        self.release_now(grant)

    def release_now(self, grant: Grant) -> None:
        self._taken.pop(grant.token, None)
        state = self._lines.get(grant.line.id)
        if state is None or grant.token not in state.active:
            return
        state.active.discard(grant.token)
        if grant.scenario is not None and grant.scenario in self._scenarios:
            self._scenarios[grant.scenario].active.discard(grant.token)
        self._released.set()
        self._released = asyncio.Event()

    async def wait_for_release(self, timeout: float | None) -> None:
        event = self._released
        if timeout is None:
            await event.wait()
            return
        try:
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))
        except TimeoutError:
            pass

    async def load(self, line: OutboundLine) -> LineLoad:
        state = self._line(line)
        state.prune(clock.monotonic(), day_key(clock.now(), self.tz)[0])
        return LineLoad(len(state.active), state.waiting_inbound, len(state.minute), state.day_count)

    async def aclose(self) -> None:
        return None
