"""RedisLineLimiter against a real redis-server: shared limits across independent limiters and
across two OS processes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.dialer.audit import LimitAudit
from switchboard.dialer.limits_redis import RedisLineLimiter
from switchboard.dialer.lines import Busy, Grant, LineLimits, OutboundLine, ScenarioLimit
from switchboard.dialer.selection import acquire_line

from .loadgen import CountingLimiter, EventLog, LoadResult, dispatch

pytestmark = pytest.mark.redis

TEHRAN = ZoneInfo("Asia/Tehran")
GRACE = 0.0  # Redis round-trips hold the virtual clock (clock.real_io)


def line(id: str, conc: int, per_min: int, per_day: int) -> OutboundLine:
    return OutboundLine(
        id=id, phone_number=f"+9821910{len(id):05d}", limits=LineLimits(conc, per_min, per_day)
    )


def limiter(url: str, prefix: str, **kw: object) -> RedisLineLimiter:
    return RedisLineLimiter.from_url(url, prefix=prefix, socket_timeout=None, **kw)  # type: ignore[arg-type]


def test_two_independent_limiters_share_every_limit(redis_url: str) -> None:
    """Two limiters with their own connections (as two engine processes would have) dial 2,000
    attempts against the same lines; the merged record never exceeds a limit."""
    lines = [line("a", 3, 10, 5000), line("b", 6, 40, 5000), line("c", 4, 60, 180)]
    scen = ScenarioLimit("survey", per_minute=8, max_concurrent=3)
    prefix = f"t:{uuid.uuid4().hex}"
    start = datetime(2026, 5, 4, 23, 30, tzinfo=TEHRAN).astimezone(UTC)

    async def main() -> tuple[LimitAudit, list[LoadResult], int]:
        one = CountingLimiter(limiter(redis_url, prefix, originations_per_second=1.5, tz=TEHRAN))
        two = CountingLimiter(limiter(redis_url, prefix, originations_per_second=1.5, tz=TEHRAN))
        log = EventLog()
        results = await asyncio.gather(
            dispatch(
                one,
                lines,
                log,
                attempts=1000,
                rng=random.Random(1),
                duration=(2.0, 90.0),
                scenario_for=lambda i: scen if i % 4 == 0 else None,
            ),
            dispatch(
                two,
                lines,
                log,
                attempts=1000,
                rng=random.Random(2),
                duration=(2.0, 90.0),
                scenario_for=lambda i: scen if i % 4 == 1 else None,
            ),
        )
        attempts = one.attempts + two.attempts
        await one.inner.reset()
        await one.aclose()
        await two.aclose()
        audit = log.audit(originations_per_second=1.5, tz=TEHRAN, tolerance=1e-4)
        return audit, list(results), attempts

    audit, results, attempts = run_virtual(main(), start=start, real_grace=GRACE)
    assert audit.violations == []
    assert all(r.grants == 1000 for r in results)
    for ln in lines:
        assert audit.max_active[ln.id] == ln.limits.max_concurrent, ln.id
    assert max(n for (lid, _), n in audit.day_counts.items() if lid == "c") == 180
    assert attempts < 8 * 2000  # sleeps until capacity; polls only for cross-process releases


def test_inbound_waiting_in_one_process_blocks_outbound_in_another(redis_url: str) -> None:
    a, b = line("a", 1, 100, 100), line("bb", 1, 100, 100)
    prefix = f"t:{uuid.uuid4().hex}"

    async def main() -> None:
        dialer = limiter(redis_url, prefix, poll_interval=0.2)
        pbx = limiter(redis_url, prefix, poll_interval=0.2)
        out = await dialer.acquire_outbound([a])
        assert isinstance(out, Grant)
        waiter = asyncio.ensure_future(pbx.acquire_inbound(a, timeout=30))
        await asyncio.sleep(0.05)
        assert (await dialer.load(a)).waiting_inbound == 1
        await dialer.release(out)
        blocked = await dialer.acquire_outbound([a])
        assert isinstance(blocked, Busy) and blocked.retry_after is None
        other = await dialer.acquire_outbound([a, b])
        assert isinstance(other, Grant) and other.line.id == "bb"
        inbound = await waiter
        assert inbound is not None and inbound.direction == "inbound"
        assert (await dialer.load(a)).active == 1
        assert isinstance(await dialer.acquire_outbound([a]), Busy)
        await pbx.release(inbound)
        assert isinstance(await dialer.acquire_outbound([a]), Grant)
        assert await pbx.acquire_inbound(a, timeout=3) is None
        assert (await pbx.load(a)).waiting_inbound == 0
        await dialer.reset()
        await dialer.aclose()
        await pbx.aclose()

    run_virtual(main(), real_grace=GRACE)


def test_busy_times_and_scenario_limits(redis_url: str) -> None:
    ln = line("m", 10, 3, 1000)
    scen = ScenarioLimit("promo", max_concurrent=1)
    prefix = f"t:{uuid.uuid4().hex}"

    async def main() -> None:
        lim = limiter(redis_url, prefix, originations_per_second=2.0)
        g1 = await lim.acquire_outbound([ln], scen)
        assert isinstance(g1, Grant) and g1.scenario == "promo"
        busy = await lim.acquire_outbound([ln])
        assert isinstance(busy, Busy) and busy.retry_after == pytest.approx(0.5, abs=1e-3)
        await asyncio.sleep(0.5)
        busy = await lim.acquire_outbound([ln], scen)
        assert isinstance(busy, Busy) and busy.retry_after is None and "concurrent" in busy.reason
        await lim.release(g1)
        assert isinstance(await lim.acquire_outbound([ln], scen), Grant)
        await asyncio.sleep(0.5)
        assert isinstance(await lim.acquire_outbound([ln]), Grant)
        await asyncio.sleep(0.5)
        busy = await lim.acquire_outbound([ln])
        assert isinstance(busy, Busy) and busy.retry_after == pytest.approx(58.5, abs=1e-3)
        t0 = clock.monotonic()
        got = await acquire_line(lim, [ln])
        assert got is not None and clock.monotonic() - t0 == pytest.approx(58.5, abs=0.01)
        await lim.reset()
        await lim.aclose()

    run_virtual(main(), real_grace=GRACE)


def test_a_crashed_process_slot_expires_with_its_lease(redis_url: str) -> None:
    ln = line("z", 1, 100, 100)
    prefix = f"t:{uuid.uuid4().hex}"

    async def main() -> None:
        crashed = limiter(redis_url, prefix, lease_seconds=600)
        assert isinstance(await crashed.acquire_outbound([ln]), Grant)
        await crashed.aclose()  # never releases
        survivor = limiter(redis_url, prefix)
        assert isinstance(await survivor.acquire_outbound([ln]), Busy)
        await asyncio.sleep(601)
        assert isinstance(await survivor.acquire_outbound([ln]), Grant)
        await survivor.reset()
        await survivor.aclose()

    run_virtual(main(), real_grace=GRACE)


def test_two_processes_share_limits(redis_url: str) -> None:
    """Two OS processes dial for ~3 s of real time through one Redis; merged they respect every limit."""
    prefix = f"t:{uuid.uuid4().hex}"
    worker = Path(__file__).with_name("redis_worker.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), redis_url, prefix, "3.0", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]

    async def cleanup() -> None:
        leftover = limiter(redis_url, prefix)
        await leftover.reset()
        await leftover.aclose()

    asyncio.run(cleanup())
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    per_process = [[json.loads(row) for row in out.splitlines() if row.strip()] for out, _ in outputs]
    assert all(per_process), "both processes must have dialed"

    from .redis_worker import LINES, RATE

    by_id = {ln.id: ln for ln in LINES}
    events = []
    for rows in per_process:
        for row in rows:
            # An end is logged just before its release, so it precedes any start it enabled; 2 ms
            # of slack absorbs the two processes' clock anchors.
            events.append((row["start"], 1, row["line"]))
            events.append((row["end"] - 0.002, 0, row["line"]))
    audit = LimitAudit(originations_per_second=RATE, tolerance=1e-3)
    for t, kind, line_id in sorted(events):
        if kind == 1:
            audit.start(by_id[line_id], t)
        else:
            audit.end(by_id[line_id])
    assert audit.violations == []
    starts = {lid: sum(1 for rows in per_process for r in rows if r["line"] == lid) for lid in by_id}
    assert starts["p1"] == 12  # the per-minute limit was reached, jointly, and not passed
    assert starts["p2"] == 7  # the per-day limit likewise


def test_a_release_in_another_process_wakes_the_waiting_dialer_at_once(redis_url: str) -> None:
    """Cross-process releases arrive over pub/sub, not at the next safety-net poll."""
    ln = line("w", 1, 100, 100)
    prefix = f"t:{uuid.uuid4().hex}"

    async def main() -> float:
        holder = limiter(redis_url, prefix)
        waiter = limiter(redis_url, prefix, poll_interval=30.0)
        held = await holder.acquire_outbound([ln])
        assert isinstance(held, Grant)

        async def hang_up_later() -> None:
            await asyncio.sleep(12.3)
            await holder.release(held)

        task = asyncio.ensure_future(hang_up_later())
        t0 = clock.monotonic()
        got = await acquire_line(waiter, [ln])
        waited = clock.monotonic() - t0
        assert got is not None
        await task
        await holder.reset()
        await holder.aclose()
        await waiter.aclose()
        return waited

    assert run_virtual(main(), real_grace=0.05) == pytest.approx(12.3, abs=0.01)
