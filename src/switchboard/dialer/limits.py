"""Builds the limiter and the bootstrap lines from Settings: Redis when `REDIS_URL` is set (several
engine processes share the limits), in-process otherwise."""

from __future__ import annotations

from switchboard.dialer.limits_memory import MemoryLineLimiter
from switchboard.dialer.limits_redis import RedisLineLimiter
from switchboard.dialer.lines import LineLimiter, LineLimits, OutboundLine, lines_from_numbers, parse_timezone
from switchboard.settings import Settings


def default_line_limits(settings: Settings) -> LineLimits:
    return LineLimits(
        max_concurrent=settings.max_concurrent_calls,
        per_minute=settings.max_calls_per_minute,
        per_day=settings.max_calls_per_day,
    )


def bootstrap_lines(settings: Settings) -> list[OutboundLine]:
    """Lines from `OUTBOUND_NUMBERS` with the default limits, until the panel sends its own."""
    return lines_from_numbers(Settings.split_list(settings.outbound_numbers), default_line_limits(settings))


def build_limiter(settings: Settings, *, virtual_clock: bool = False) -> LineLimiter:
    """`virtual_clock=True` when the limiter runs on the simulator's `VirtualClockLoop`."""
    tz = parse_timezone(settings.panel_timezone)
    if settings.redis_url:
        return RedisLineLimiter.from_url(
            settings.redis_url,
            socket_timeout=None if virtual_clock else 5.0,
            originations_per_second=settings.max_originations_per_second,
            tz=tz,
            prefix=f"switchboard:{settings.company}:limits",
        )
    return MemoryLineLimiter(settings.max_originations_per_second, tz=tz)
