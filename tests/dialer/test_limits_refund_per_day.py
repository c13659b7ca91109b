"""A scenario's per-day limit and a refunded (unused) slot, on both limiter backends: the day
limit holds, rolls over at local midnight, and a slot handed back unused counts toward nothing."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.dialer.limits_memory import MemoryLineLimiter
from switchboard.dialer.lines import Busy, Grant, LineLimits, OutboundLine, ScenarioLimit

TEHRAN = ZoneInfo("Asia/Tehran")
LINE = OutboundLine("l1", "+982191000001", limits=LineLimits(10, 100, 3))
SCENARIO = ScenarioLimit("promo", per_day=2)
REDIS = os.environ.get("REDIS_URL_TEST", "")


def make(kind: str):  # type: ignore[no-untyped-def]
    if kind == "memory":
        return MemoryLineLimiter(0.0, tz=TEHRAN)
    from switchboard.dialer.limits_redis import RedisLineLimiter

    return RedisLineLimiter.from_url(REDIS, prefix=f"t:{uuid.uuid4().hex}", socket_timeout=None, tz=TEHRAN)


KINDS = ["memory"] + (["redis"] if REDIS else [])


@pytest.mark.parametrize("kind", KINDS)
def test_scenario_per_day_holds_and_rolls_over_at_local_midnight(kind: str) -> None:
    async def main() -> None:
        limiter = make(kind)
        try:
            grants = [await limiter.acquire_outbound([LINE], SCENARIO) for _ in range(2)]
            assert all(isinstance(g, Grant) for g in grants)
            for g in grants:
                await limiter.release(g)
            third = await limiter.acquire_outbound([LINE], SCENARIO)
            assert isinstance(third, Busy) and "per-day" in third.reason
            midnight = datetime(2026, 6, 2, 0, 0, tzinfo=TEHRAN)
            assert third.retry_after is not None
            assert abs(clock.now() + timedelta(seconds=third.retry_after) - midnight) < timedelta(seconds=1)
            other = await limiter.acquire_outbound([LINE], ScenarioLimit("other", per_day=2))
            assert isinstance(other, Grant)  # another scenario has its own day
            await limiter.release(other)
            await __import__("asyncio").sleep(third.retry_after)
            again = await limiter.acquire_outbound([LINE], SCENARIO)
            assert isinstance(again, Grant), again
        finally:
            if kind == "redis":
                await limiter.reset()  # type: ignore[attr-defined]
            await limiter.aclose()

    run_virtual(main(), start=datetime(2026, 6, 1, 20, 0, tzinfo=TEHRAN).astimezone(UTC))


@pytest.mark.parametrize("kind", KINDS)
def test_a_refunded_slot_counts_toward_no_limit(kind: str) -> None:
    async def main() -> None:
        limiter = make(kind)
        try:
            # the line allows 3 a day; take and refund three times, then three real calls still fit
            for _ in range(3):
                g = await limiter.acquire_outbound([LINE], SCENARIO)
                assert isinstance(g, Grant)
                await limiter.refund(g)
            load = await limiter.load(LINE)
            assert (load.active, load.minute_count, load.day_count) == (0, 0, 0)
            used = [await limiter.acquire_outbound([LINE], None) for _ in range(3)]
            assert all(isinstance(g, Grant) for g in used)
            assert isinstance(await limiter.acquire_outbound([LINE], None), Busy)
            await limiter.release(used[0])
            await limiter.refund(used[0])  # a refund after the release changes nothing
            assert (await limiter.load(LINE)).day_count == 3
        finally:
            if kind == "redis":
                await limiter.reset()  # type: ignore[attr-defined]
            await limiter.aclose()

    run_virtual(main(), start=datetime(2026, 6, 1, 10, 0, tzinfo=TEHRAN).astimezone(UTC))
