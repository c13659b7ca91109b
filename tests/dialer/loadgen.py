"""Synthetic dialing load for the limit tests: a dispatcher that takes slots through
`acquire_line`, calls of random duration, optional inbound arrivals, all recorded in a LimitAudit."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from switchboard.dialer.audit import LimitAudit
from switchboard.dialer.lines import Grant, LineLimiter, OutboundLine, ScenarioLimit
from switchboard.dialer.selection import acquire_line


class CountingLimiter:
    """Counts acquire attempts, to prove the dispatcher sleeps instead of polling."""

    def __init__(self, inner: LineLimiter) -> None:
        self.inner = inner
        self.attempts = 0

    async def acquire_outbound(self, lines, scenario=None):  # type: ignore[no-untyped-def]
        self.attempts += 1
        return await self.inner.acquire_outbound(lines, scenario)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


@dataclass
class LoadResult:
    grants: int = 0
    inbound_served: int = 0
    inbound_timeouts: int = 0
    outbound_per_line: dict[str, int] = field(default_factory=dict)


async def _call(
    limiter: LineLimiter, audit: LimitAudit, grant: Grant, scenario: ScenarioLimit | None, seconds: float
) -> None:
    await asyncio.sleep(seconds)
    audit.end(grant.line, scenario=scenario if grant.scenario else None)
    await limiter.release(grant)


async def dispatch(
    limiter: LineLimiter,
    lines: Sequence[OutboundLine],
    audit: LimitAudit,
    *,
    attempts: int,
    rng: random.Random,
    duration: tuple[float, float] = (5.0, 120.0),
    scenario_for: Callable[[int], ScenarioLimit | None] = lambda i: None,
    result: LoadResult | None = None,
) -> LoadResult:
    result = result or LoadResult()
    calls: set[asyncio.Task[None]] = set()
    for i in range(attempts):
        scenario = scenario_for(i)
        grant = await acquire_line(limiter, lines, scenario)
        assert grant is not None
        audit.start(grant.line, grant.at.timestamp(), scenario=scenario if grant.scenario else None)
        result.grants += 1
        result.outbound_per_line[grant.line.id] = result.outbound_per_line.get(grant.line.id, 0) + 1
        task = asyncio.ensure_future(_call(limiter, audit, grant, scenario, rng.uniform(*duration)))
        calls.add(task)
        task.add_done_callback(calls.discard)
    if calls:
        await asyncio.gather(*calls)
    return result


async def inbound_arrivals(
    limiter: LineLimiter,
    lines: Sequence[OutboundLine],
    audit: LimitAudit,
    *,
    count: int,
    mean_gap: float,
    rng: random.Random,
    duration: tuple[float, float] = (10.0, 90.0),
    patience: float = 60.0,
    result: LoadResult,
) -> None:
    async def one(line: OutboundLine) -> None:
        audit.inbound_waiting(line, +1)
        grant = await limiter.acquire_inbound(line, timeout=patience)
        audit.inbound_waiting(line, -1)
        if grant is None:
            result.inbound_timeouts += 1
            return
        result.inbound_served += 1
        audit.start(line, grant.at.timestamp(), direction="inbound")
        await asyncio.sleep(rng.uniform(*duration))
        audit.end(line)
        await limiter.release(grant)

    tasks = []
    for _ in range(count):
        await asyncio.sleep(rng.expovariate(1.0 / mean_gap))
        tasks.append(asyncio.ensure_future(one(rng.choice(list(lines)))))
    await asyncio.gather(*tasks)


class EventLog:
    """Collects starts/ends and audits them in time order afterwards: with several limiters on one
    Redis the order continuations run in need not be the order Redis served them."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int, int, OutboundLine, str, ScenarioLimit | None]] = []
        self._seq = 0

    def _add(
        self, t: float, kind: int, line: OutboundLine, direction: str, scenario: ScenarioLimit | None
    ) -> None:
        self._seq += 1
        self.events.append((t, kind, self._seq, line, direction, scenario))

    def inbound_waiting(self, line: OutboundLine, delta: int) -> None:
        return None

    def start(
        self,
        line: OutboundLine,
        t: float,
        *,
        direction: str = "outbound",
        scenario: ScenarioLimit | None = None,
    ) -> None:
        self._add(t, 1, line, direction, scenario)

    def end(self, line: OutboundLine, *, scenario: ScenarioLimit | None = None) -> None:
        from switchboard import clock

        self._add(clock.now().timestamp(), 0, line, "", scenario)

    def audit(self, **kwargs: object) -> LimitAudit:
        audit = LimitAudit(**kwargs)  # type: ignore[arg-type]
        for t, kind, _, line, direction, scenario in sorted(self.events, key=lambda e: (e[0], e[1], e[2])):
            if kind == 1:
                audit.start(line, t, direction=direction, scenario=scenario)
            else:
                audit.end(line, scenario=scenario)
        return audit
