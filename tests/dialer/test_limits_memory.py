from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.dialer.audit import LimitAudit
from switchboard.dialer.limits_memory import MemoryLineLimiter, TokenBucket
from switchboard.dialer.lines import Busy, Grant, LineLimits, OutboundLine, ScenarioLimit, parse_timezone
from switchboard.dialer.selection import acquire_line

from .loadgen import CountingLimiter, LoadResult, dispatch, inbound_arrivals

TEHRAN = ZoneInfo("Asia/Tehran")


def line(id: str, conc: int, per_min: int, per_day: int) -> OutboundLine:
    return OutboundLine(
        id=id, phone_number=f"+98219100{id[-4:].rjust(4, '0')}", limits=LineLimits(conc, per_min, per_day)
    )


def test_synthetic_load_never_exceeds_any_limit_across_local_midnight() -> None:
    """5,000 attempts, random durations, inbound traffic, scenario limits, a day boundary."""
    lines = [
        line("l1", 3, 20, 5000),
        line("l2", 8, 12, 5000),
        line("l3", 5, 60, 350),
        line("l4", 2, 30, 5000),
    ]
    capped = ScenarioLimit("survey", per_minute=9, max_concurrent=4)
    rng = random.Random(7)
    # 23:20 in Tehran, so the per-day counters roll over at local midnight mid-run.
    start = datetime(2026, 3, 10, 23, 20, tzinfo=TEHRAN).astimezone(UTC)

    async def main() -> tuple[LimitAudit, LoadResult, CountingLimiter]:
        limiter = CountingLimiter(MemoryLineLimiter(2.0, tz=TEHRAN))
        audit = LimitAudit(originations_per_second=2.0, tz=TEHRAN)
        result = LoadResult()
        await asyncio.gather(
            dispatch(
                limiter,
                lines,
                audit,
                attempts=5000,
                rng=rng,
                duration=(3.0, 150.0),
                scenario_for=lambda i: capped if i % 3 == 0 else None,
                result=result,
            ),
            inbound_arrivals(limiter, lines, audit, count=300, mean_gap=10.0, rng=rng, result=result),
        )
        return audit, result, limiter

    audit, result, limiter = run_virtual(main(), start=start)
    assert audit.violations == []
    assert result.grants == 5000
    assert result.inbound_served > 250
    # Every limit was actually reached (the test would catch an over-admitting limiter).
    for ln in lines:
        assert audit.max_active[ln.id] == ln.limits.max_concurrent, ln.id
    days = {day for (_, day) in audit.day_counts}
    assert len(days) == 2
    assert max(audit.day_counts[("l3", d)] for d in days) == 350
    # No busy polling: a handful of limiter calls per grant, not thousands.
    assert limiter.attempts < 4 * result.grants


def test_audit_catches_an_over_admitting_limiter() -> None:
    """The checker itself must fail when limits are broken (otherwise the test above proves nothing)."""
    ln = line("x", 1, 2, 3)
    audit = LimitAudit(originations_per_second=1.0)
    audit.start(ln, 0.0)
    audit.start(ln, 0.5)  # concurrent 2 > 1, and 0.5 s apart at 1/s
    audit.end(ln)
    audit.end(ln)
    audit.start(ln, 10.0)  # third start within 60 s
    audit.start(ln, 100.0)  # concurrent again (10.0 never ended), fourth start of the day
    kinds = [v.split(" ", 2)[2] for v in audit.violations]
    assert kinds == [
        "line x: 2 concurrent > 1",
        "starts 0.500000s apart < 1/1.0",
        "more than 1.0 starts in one second",
        "line x: more than 2 starts in 60 s",
        "line x: 2 concurrent > 1",
        "line x: more than 3 starts on 1970-01-01",
    ]


def test_least_load_picks_the_emptiest_line_by_ratio() -> None:
    big, small = line("big", 10, 100, 1000), line("small", 2, 100, 1000)

    async def main() -> list[str]:
        limiter = MemoryLineLimiter()
        picks = []
        for _ in range(7):
            grant = await limiter.acquire_outbound([small, big])
            assert isinstance(grant, Grant)
            picks.append(grant.line.id)
        return picks

    # Tie at 0 -> configuration order; then big (0/10 < 1/2) until it reaches 5/10, where the
    # minute-window ratio breaks the tie (small 1/100 < big 5/100).
    assert run_virtual(main()) == ["small", "big", "big", "big", "big", "big", "small"]


def test_busy_reports_when_capacity_returns() -> None:
    ln = line("a", 5, 2, 1000)

    async def main() -> list[object]:
        limiter = MemoryLineLimiter()
        out: list[object] = [await limiter.acquire_outbound([ln]) for _ in range(3)]
        full = MemoryLineLimiter()
        one = line("b", 1, 100, 100)
        g = await full.acquire_outbound([one])
        out.append(await full.acquire_outbound([one]))
        assert isinstance(g, Grant)
        await full.release(g)
        await full.release(g)  # idempotent
        out.append(await full.acquire_outbound([one]))
        return out

    a, b, minute_busy, conc_busy, after_release = run_virtual(main())
    assert isinstance(a, Grant) and isinstance(b, Grant)
    assert isinstance(minute_busy, Busy) and minute_busy.retry_after == pytest.approx(60.0)
    assert isinstance(conc_busy, Busy) and conc_busy.retry_after is None  # only a release helps
    assert isinstance(after_release, Grant)


def test_day_limit_waits_until_local_midnight() -> None:
    ln = line("d", 5, 100, 2)
    start = datetime(2026, 6, 1, 22, 0, tzinfo=TEHRAN).astimezone(UTC)

    async def main() -> tuple[object, datetime]:
        limiter = MemoryLineLimiter(tz=TEHRAN)
        for _ in range(2):
            g = await limiter.acquire_outbound([ln])
            assert isinstance(g, Grant)
            await limiter.release(g)
        busy = await limiter.acquire_outbound([ln])
        g = await acquire_line(limiter, [ln])
        assert g is not None
        return busy, clock.now()

    busy, granted_at = run_virtual(main(), start=start)
    assert isinstance(busy, Busy) and busy.retry_after == pytest.approx(2 * 3600, abs=0.01)
    assert granted_at.astimezone(TEHRAN).strftime("%Y-%m-%d %H:%M") == "2026-06-02 00:00"


def test_token_bucket_spaces_starts() -> None:
    bucket = TokenBucket(4.0)
    assert bucket.wait(0.0) == 0.0
    bucket.take(0.0)
    assert bucket.wait(0.1) == pytest.approx(0.15)
    assert bucket.wait(0.25) == 0.0
    burst = TokenBucket(2.0, burst=3)
    for _ in range(3):
        assert burst.wait(0.0) == 0.0
        burst.take(0.0)
    assert burst.wait(0.0) == pytest.approx(0.5)
    assert TokenBucket(0).wait(123.0) == 0.0


def test_inbound_waiting_blocks_outbound_on_that_line_only() -> None:
    a, b = line("a", 1, 100, 100), line("b", 1, 100, 100)

    async def main() -> None:
        limiter = MemoryLineLimiter()
        out_a = await limiter.acquire_outbound([a])
        assert isinstance(out_a, Grant)
        waiter = asyncio.ensure_future(limiter.acquire_inbound(a, timeout=30))
        await asyncio.sleep(0)
        assert (await limiter.load(a)).waiting_inbound == 1
        await limiter.release(out_a)
        # The released slot goes to the waiting inbound call, not to a new outbound one.
        blocked = await limiter.acquire_outbound([a])
        assert isinstance(blocked, Busy)
        other = await limiter.acquire_outbound([a, b])
        assert isinstance(other, Grant) and other.line.id == "b"
        inbound = await waiter
        assert inbound is not None and inbound.direction == "inbound"
        assert isinstance(await limiter.acquire_outbound([a]), Busy)  # slot held by inbound
        await limiter.release(inbound)
        assert isinstance(await limiter.acquire_outbound([a]), Grant)
        # An inbound call that finds no slot within its patience gives up.
        assert await limiter.acquire_inbound(a, timeout=5) is None
        assert (await limiter.load(a)).waiting_inbound == 0

    run_virtual(main())


def test_scenario_limits_apply_across_lines() -> None:
    lines = [line("a", 10, 100, 1000), line("b", 10, 100, 1000)]
    scen = ScenarioLimit("promo", per_minute=3, max_concurrent=2)

    async def main() -> None:
        limiter = MemoryLineLimiter()
        g1 = await limiter.acquire_outbound(lines, scen)
        g2 = await limiter.acquire_outbound(lines, scen)
        assert isinstance(g1, Grant) and isinstance(g2, Grant)
        assert {g1.line.id, g2.line.id} == {"a", "b"}
        busy = await limiter.acquire_outbound(lines, scen)
        assert isinstance(busy, Busy) and busy.retry_after is None and "concurrent" in busy.reason
        assert isinstance(await limiter.acquire_outbound(lines), Grant)  # other scenarios unaffected
        await limiter.release(g1)
        g3 = await limiter.acquire_outbound(lines, scen)
        assert isinstance(g3, Grant)
        await limiter.release(g2)
        busy = await limiter.acquire_outbound(lines, scen)
        assert isinstance(busy, Busy) and busy.retry_after == pytest.approx(60.0)

    run_virtual(main())


def test_acquire_line_stops_on_graceful_stop() -> None:
    ln = line("a", 1, 100, 100)

    async def main() -> tuple[object, float]:
        limiter = MemoryLineLimiter()
        assert isinstance(await limiter.acquire_outbound([ln]), Grant)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(42.0, stop.set)
        t0 = clock.monotonic()
        got = await acquire_line(limiter, [ln], stop=stop)
        return got, clock.monotonic() - t0

    got, waited = run_virtual(main())
    assert got is None and waited == pytest.approx(42.0)


def test_parse_timezone() -> None:
    assert parse_timezone("+0330").utcoffset(None).total_seconds() == 3.5 * 3600  # type: ignore[union-attr]
    assert parse_timezone("-05:00").utcoffset(None).total_seconds() == -5 * 3600  # type: ignore[union-attr]
    assert parse_timezone("Asia/Tehran") == TEHRAN
    assert parse_timezone("Mars/Olympus", UTC) is UTC
    with pytest.raises(ValueError):
        parse_timezone("+99")


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Tehran"])
def test_cached_day_clock_matches_day_key_across_dst(zone: str) -> None:
    from datetime import timedelta

    from switchboard.dialer.lines import DayClock, day_key

    tz = ZoneInfo(zone)
    days = DayClock(tz)
    for start in (datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)):
        for minute in range(0, 4 * 24 * 60, 7):
            at = start + timedelta(minutes=minute)
            date, left = days.at(at)
            expected_date, expected_left = day_key(at, tz)
            assert date == expected_date and left == pytest.approx(expected_left, abs=1e-6)


def test_seeded_day_count_survives_a_restart() -> None:
    ln = line("s", 5, 100, 10)

    async def main() -> object:
        limiter = MemoryLineLimiter()
        limiter.seed_day_count(ln, 10)
        return await limiter.acquire_outbound([ln])

    busy = run_virtual(main(), start=datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    assert isinstance(busy, Busy) and busy.retry_after == pytest.approx(12 * 3600, abs=0.01)
