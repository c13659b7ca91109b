"""Waiting for a line without polling: ask the limiter, and when every line is full sleep until
the earliest time-based limit frees or a call ends, whichever comes first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from switchboard.dialer.lines import Busy, Grant, LineLimiter, OutboundLine, ScenarioLimit


async def acquire_line(
    limiter: LineLimiter,
    lines: Sequence[OutboundLine],
    scenario: ScenarioLimit | None = None,
    *,
    stop: asyncio.Event | None = None,
    max_wait: float | None = None,
) -> Grant | None:
    """Block until a slot on the least-loaded eligible line is taken and return it.

    Returns None when `stop` is set (graceful stop) or, if given, after `max_wait` seconds without
    capacity (so the caller can refresh its lines or contacts)."""
    loop = asyncio.get_running_loop()
    deadline = None if max_wait is None else loop.time() + max_wait
    while True:
        if stop is not None and stop.is_set():
            return None
        result = await limiter.acquire_outbound(lines, scenario)
        if isinstance(result, Grant):
            return result
        now = loop.time()
        if deadline is not None and now >= deadline:
            return None
        await _wait(limiter, _sleep_for(result, deadline, now), stop)


def _sleep_for(busy: Busy, deadline: float | None, now: float) -> float | None:
    timeout = busy.retry_after
    if deadline is not None:
        left = deadline - now
        timeout = left if timeout is None else min(timeout, left)
    return timeout


async def _wait(limiter: LineLimiter, timeout: float | None, stop: asyncio.Event | None) -> None:
    if stop is None:
        await limiter.wait_for_release(timeout)
        return
    released = asyncio.ensure_future(limiter.wait_for_release(timeout))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({released, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (released, stopped):
            if not task.done():
                task.cancel()
