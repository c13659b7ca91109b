"""Outbound lines, their limits, and the `LineLimiter` contract both limiter backends honour.

A limiter answers one question atomically: "may a call start on one of these lines right now, and
on which?" It checks, all at once, the line's concurrent slots (shared by inbound and outbound),
inbound callers waiting on the line (they block new outbound calls there), the line's sliding
minute window and local-day counter, the scenario's own limits, and the global originations-per-
second bucket. When nothing can start it says how long until something might (`Busy.retry_after`),
so the dialer sleeps instead of polling.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Direction = Literal["outbound", "inbound"]

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class LineLimits:
    """Per-line limits. `max_concurrent` counts inbound and outbound calls together."""

    max_concurrent: int = 10
    per_minute: int = 60
    per_day: int = 5000

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.per_minute < 1 or self.per_day < 1:
            raise ValueError(f"line limits must be >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class OutboundLine:
    id: str
    phone_number: str
    display_name: str = ""
    limits: LineLimits = field(default_factory=LineLimits)

    @property
    def last4(self) -> str:
        digits = "".join(ch for ch in self.phone_number if ch.isdigit())
        return digits[-4:]


@dataclass(frozen=True, slots=True)
class ScenarioLimit:
    """A scenario's own rate limits, shared by every line that dials it. `None` = unlimited."""

    name: str
    per_minute: int | None = None
    max_concurrent: int | None = None
    per_day: int | None = None  # originations per local day (the limiter's time zone)

    @property
    def limited(self) -> bool:
        return self.per_minute is not None or self.max_concurrent is not None or self.per_day is not None


@dataclass(frozen=True, slots=True)
class Grant:
    """A held slot on a line; hand it back with `LineLimiter.release` when the call ends."""

    line: OutboundLine
    token: str
    direction: Direction
    at: datetime  # the instant the limiter counted the start (aware UTC): use it as attempted_at
    scenario: str | None = None


@dataclass(frozen=True, slots=True)
class Busy:
    """Nothing can start now. `retry_after` (seconds) is when the earliest time-based limit frees;
    `None` means only a call ending (a release) can free capacity."""

    retry_after: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class LineLoad:
    active: int
    waiting_inbound: int
    minute_count: int
    day_count: int


class LineLimiter(Protocol):
    """Shared-limit bookkeeping for lines; in-process (`MemoryLineLimiter`) or Redis
    (`RedisLineLimiter`, for several engine processes)."""

    async def acquire_outbound(
        self, lines: Sequence[OutboundLine], scenario: ScenarioLimit | None = None
    ) -> Grant | Busy:
        """Atomically pick the least-loaded line that can take a call now and take a slot on it."""
        ...

    async def acquire_inbound(self, line: OutboundLine, timeout: float | None = None) -> Grant | None:
        """Wait (blocking outbound on the line meanwhile) for a concurrent slot; None on timeout."""
        ...

    async def release(self, grant: Grant) -> None:
        """Give the slot back at call end. Idempotent."""
        ...

    async def refund(self, grant: Grant) -> None:
        """Give back a slot that was never used (nothing was dialed): as if it had not been taken,
        so it counts toward no minute or day limit. Idempotent."""
        ...

    async def wait_for_release(self, timeout: float | None) -> None:
        """Return when some slot may have been released, or after `timeout` seconds."""
        ...

    async def load(self, line: OutboundLine) -> LineLoad: ...

    async def aclose(self) -> None: ...


@functools.lru_cache(maxsize=1024)
def parse_timezone(value: str | None, default: tzinfo | None = None) -> tzinfo:
    """An IANA name ("Asia/Tehran") or a panel offset ("+0330", "-05:00", "UTC")."""
    if value:
        text = value.strip()
        if text and text[0] in "+-":
            sign = -1 if text[0] == "-" else 1
            digits = text[1:].replace(":", "")
            if len(digits) in (2, 4) and digits.isdigit():
                hours, minutes = int(digits[:2]), int(digits[2:] or 0)
                if hours <= 14 and minutes < 60:
                    return timezone(sign * timedelta(hours=hours, minutes=minutes))
        elif text.upper() in ("UTC", "Z", "GMT"):
            return UTC
        else:
            try:
                return ZoneInfo(text)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a directory, long names
                pass
    if default is not None:
        return default
    raise ValueError(f"unknown timezone {value!r}: expected an IANA name or an offset like +0330")


def day_key(at: datetime, tz: tzinfo) -> tuple[str, float]:
    """The local date of `at` in `tz` and the seconds until that day ends (DST-aware)."""
    local = at.astimezone(tz)
    next_midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    remaining = (next_midnight.astimezone(UTC) - at.astimezone(UTC)).total_seconds()
    return local.date().isoformat(), max(remaining, 0.0)


class DayClock:
    """`day_key` with the current local day cached: recomputed only when a day boundary passes."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._start = self._end = 0.0
        self._date = ""

    def at(self, wall: datetime) -> tuple[str, float]:
        ts = wall.timestamp()
        if not (self._start <= ts < self._end):
            self._date, left = day_key(wall, self.tz)
            self._end = ts + left
            local = wall.astimezone(self.tz)
            midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=self.tz)
            self._start = midnight.astimezone(UTC).timestamp()
        return self._date, self._end - ts


def load_order_key(
    active: int, limits: LineLimits, minute_count: int, index: int
) -> tuple[float, float, int]:
    """Least load first: concurrent ratio, then minute-window ratio, then configuration order."""
    return (active / limits.max_concurrent, minute_count / limits.per_minute, index)


def combine_waits(global_wait: float | None, line_waits: Sequence[float | None]) -> float | None:
    """Seconds until a call may start: the soonest line (0 = free now), but not before a global
    block lifts. `None` stands for "only a release can help"."""
    if global_wait is None:
        return None
    finite = [w for w in line_waits if w is not None]
    if not finite:
        return None
    return max(global_wait, min(finite))


def lines_from_numbers(numbers: Sequence[str], limits: LineLimits) -> list[OutboundLine]:
    """Bootstrap lines from `OUTBOUND_NUMBERS`; the panel's `outbound_lines` replace them later."""
    return [
        OutboundLine(id=number, phone_number=number, display_name=number, limits=limits) for number in numbers
    ]
