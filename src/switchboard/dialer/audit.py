"""An independent recount of every limit from the calls actually started and ended.

The limiters enforce; this only observes (with simple, different code) and lists violations, so
simulations, tests and `benchmarks/dialer.py` can prove "limits never exceeded". Record a start
right after a slot is granted and an end right before it is released.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from switchboard.dialer.lines import OutboundLine, ScenarioLimit


@dataclass(slots=True)
class _Window:
    times: deque[float] = field(default_factory=deque)

    def count_after(self, t: float, span: float, tol: float) -> int:
        while self.times and self.times[0] <= t - span + tol:
            self.times.popleft()
        return len(self.times)


class LimitAudit:
    """Times are epoch seconds (`clock.now().timestamp()`), so several processes can share one."""

    def __init__(
        self,
        *,
        originations_per_second: float = 0.0,
        tz: tzinfo = UTC,
        tolerance: float = 1e-6,
    ) -> None:
        self.rate = originations_per_second
        self.tz = tz
        self.tol = tolerance
        self.violations: list[str] = []
        self.starts = 0
        self.outbound_starts = 0
        self.active: Counter[str] = Counter()
        self.scenario_active: Counter[str] = Counter()
        self.waiting_inbound: Counter[str] = Counter()
        self.day_counts: Counter[tuple[str, str]] = Counter()
        self.max_active: Counter[str] = Counter()
        self._minute: dict[str, _Window] = {}
        self._scenario_minute: dict[str, _Window] = {}
        self._second = _Window()
        self._last_start = -math.inf

    def inbound_waiting(self, line: OutboundLine, delta: int) -> None:
        self.waiting_inbound[line.id] += delta

    def start(
        self,
        line: OutboundLine,
        t: float,
        *,
        direction: str = "outbound",
        scenario: ScenarioLimit | None = None,
    ) -> None:
        self.starts += 1
        self.active[line.id] += 1
        self.max_active[line.id] = max(self.max_active[line.id], self.active[line.id])
        if self.active[line.id] > line.limits.max_concurrent:
            self._bad(t, f"line {line.id}: {self.active[line.id]} concurrent > {line.limits.max_concurrent}")
        if direction != "outbound":
            return
        self.outbound_starts += 1
        if self.waiting_inbound[line.id] > 0:
            self._bad(t, f"line {line.id}: outbound started while an inbound call waited")
        minute = self._minute.setdefault(line.id, _Window())
        if minute.count_after(t, 60.0, self.tol) + 1 > line.limits.per_minute:
            self._bad(t, f"line {line.id}: more than {line.limits.per_minute} starts in 60 s")
        minute.times.append(t)
        day = datetime.fromtimestamp(t, self.tz).date().isoformat()
        self.day_counts[(line.id, day)] += 1
        if self.day_counts[(line.id, day)] > line.limits.per_day:
            self._bad(t, f"line {line.id}: more than {line.limits.per_day} starts on {day}")
        if self.rate > 0:
            if t - self._last_start < 1.0 / self.rate - self.tol:
                self._bad(t, f"starts {t - self._last_start:.6f}s apart < 1/{self.rate}")
            if self._second.count_after(t, 1.0, self.tol) + 1 > math.ceil(self.rate):
                self._bad(t, f"more than {self.rate} starts in one second")
            self._second.times.append(t)
            self._last_start = max(self._last_start, t)
        if scenario is not None:
            self.scenario_active[scenario.name] += 1
            if (
                scenario.max_concurrent is not None
                and self.scenario_active[scenario.name] > scenario.max_concurrent
            ):
                self._bad(t, f"scenario {scenario.name}: over {scenario.max_concurrent} concurrent")
            window = self._scenario_minute.setdefault(scenario.name, _Window())
            if (
                scenario.per_minute is not None
                and window.count_after(t, 60.0, self.tol) + 1 > scenario.per_minute
            ):
                self._bad(t, f"scenario {scenario.name}: more than {scenario.per_minute} starts in 60 s")
            window.times.append(t)
            if scenario.per_day is not None:
                self.day_counts[(f"scenario:{scenario.name}", day)] += 1
                if self.day_counts[(f"scenario:{scenario.name}", day)] > scenario.per_day:
                    self._bad(t, f"scenario {scenario.name}: more than {scenario.per_day} starts on {day}")

    def cancel(self, line: OutboundLine, t: float, *, scenario: ScenarioLimit | None = None) -> None:
        """An outbound start at `t` handed back unused (the limiter refunded it): it never happened."""
        self.starts -= 1
        self.outbound_starts -= 1
        self.active[line.id] -= 1
        minute = self._minute.get(line.id)
        if minute is not None and t in minute.times:
            minute.times.remove(t)
        day = datetime.fromtimestamp(t, self.tz).date().isoformat()
        self.day_counts[(line.id, day)] -= 1
        if scenario is not None:
            self.scenario_active[scenario.name] -= 1
            window = self._scenario_minute.get(scenario.name)
            if window is not None and t in window.times:
                window.times.remove(t)
            if scenario.per_day is not None:
                self.day_counts[(f"scenario:{scenario.name}", day)] -= 1

    def end(self, line: OutboundLine, *, scenario: ScenarioLimit | None = None) -> None:
        self.active[line.id] -= 1
        if scenario is not None:
            self.scenario_active[scenario.name] -= 1

    def _bad(self, t: float, what: str) -> None:
        self.violations.append(f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S.%f} {what}")
