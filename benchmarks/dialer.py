"""Dialer limits benchmark: 1,000,000 contacts over 100 lines with mixed limits, on the virtual clock
(`--contacts 10000 --lines 10 --scenarios line,rate,scenario` for the small classic set).

A minimal scheduling loop of its own (no engine): for each contact, a compliance check, then
`acquire_line` (least-load selection, sleeping until capacity returns), a call of random duration,
`release`. Every start and end is replayed through `LimitAudit` in time order.

Prints, per scenario:
  * violations (must be 0): concurrent, per minute, per day, per second, per scenario;
  * achieved throughput as a % of the limit-bound optimum. The optimum is the fluid bound: line i
    sustains r_i = min(max_concurrent_i / E[duration], per_minute_i / 60) starts per second, at
    most per_day_i in a day, and all lines together at most MAX_ORIGINATIONS_PER_SECOND. The
    optimal makespan T* solves min(R*T, sum_i min(r_i*T, d_i)) = N; achieved = T* / T_last_start;
  * CPU per dialing decision (one limiter acquire, granted or busy) and per origination
    (compliance check + all acquires + bookkeeping, i.e. the loop's total CPU / starts).

With `--redis`, the figures are the dialer process's CPU per decision (what the dialer spends) and
Redis's own CPU per decision (from INFO cpu), one round trip per decision.

Usage: python benchmarks/dialer.py [--contacts 1000000] [--lines 100] [--scenarios line]
                                   [--seed 1] [--redis redis://127.0.0.1:6379/0]
The last line: `dialer: N contacts x L lines, V violations, C us CPU per decision (backend)`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.dialer.audit import LimitAudit
from switchboard.dialer.compliance import Allowed, CompliancePolicy, ContactState, evaluate
from switchboard.dialer.limits_memory import MemoryLineLimiter
from switchboard.dialer.lines import Grant, LineLimiter, LineLimits, OutboundLine, ScenarioLimit
from switchboard.dialer.selection import acquire_line

TEHRAN = ZoneInfo("Asia/Tehran")
START = datetime(2026, 6, 1, 9, 0, tzinfo=TEHRAN).astimezone(UTC)
DURATION = (20.0, 180.0)  # uniform call length in seconds; mean 100 s


def many_lines(n: int, contacts: int) -> list[OutboundLine]:
    """`n` lines cycling through the mixed limits below. For more than the ten base lines, their
    concurrency and per-minute limits are scaled so `contacts` fit in about ten hours (one calling
    day) and day limits sized to match (one line in ten stays day-bound)."""
    base = mixed_lines()
    if n <= len(base):
        return base[:n]
    mean = sum(DURATION) / 2
    base_rate = sum(line_rate(base[i % len(base)], mean) for i in range(n))
    scale = max(1, math.ceil(contacts / (10 * 3600) / base_rate))
    day = max(400, int(contacts / n * 1.5))
    out = []
    for i in range(n):
        limits = base[i % len(base)].limits
        per_day = max(50, day // 4) if i % 10 == 5 else day
        out.append(OutboundLine(f"line{i}", f"+98219{i:06d}", limits=LineLimits(
            limits.max_concurrent * scale, limits.per_minute * scale, per_day)))
    return out


def mixed_lines() -> list[OutboundLine]:
    spec = [  # (max_concurrent, per_minute, per_day): some concurrency-bound, some minute-, one day-bound
        (10, 60, 5000),
        (20, 6, 5000),
        (5, 30, 5000),
        (30, 12, 5000),
        (8, 4, 5000),
        (15, 20, 400),
        (3, 10, 5000),
        (12, 9, 5000),
        (25, 30, 5000),
        (6, 3, 5000),
    ]
    return [
        OutboundLine(f"line{i}", f"+98219100{i:04d}", limits=LineLimits(c, m, d))
        for i, (c, m, d) in enumerate(spec)
    ]


@dataclass
class Scenario:
    name: str
    lines: list[OutboundLine]
    rate: float  # MAX_ORIGINATIONS_PER_SECOND
    scenario_limit: ScenarioLimit | None = None


def line_rate(line: OutboundLine, mean_duration: float) -> float:
    return min(line.limits.max_concurrent / mean_duration, line.limits.per_minute / 60.0)


def optimum_makespan(n: int, lines: list[OutboundLine], rate: float, mean_duration: float) -> float:
    """Smallest T with min(R*T, sum_i min(r_i*T, d_i)) >= n (single local day), by bisection."""

    def capacity(t: float) -> float:
        lines_cap = sum(min(line_rate(ln, mean_duration) * t, ln.limits.per_day) for ln in lines)
        return min(rate * t, lines_cap) if rate > 0 else lines_cap

    lo, hi = 0.0, 1.0
    while capacity(hi) < n:
        hi *= 2
        if hi > 86400 * 10:
            raise ValueError("the limits cannot place this many calls")
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if capacity(mid) < n else (lo, mid)
    return hi


class TimedLimiter:
    """Measures the CPU time of every acquire (one dialing decision)."""

    def __init__(self, inner: LineLimiter) -> None:
        self.inner = inner
        self.decisions = 0
        self.cpu = 0.0

    async def acquire_outbound(self, lines, scenario=None):  # type: ignore[no-untyped-def]
        t0 = time.process_time()
        result = await self.inner.acquire_outbound(lines, scenario)
        self.cpu += time.process_time() - t0
        self.decisions += 1
        return result

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


async def run(scenario: Scenario, contacts: int, seed: int, redis_url: str | None) -> dict[str, float | int]:
    rng = random.Random(seed)
    if redis_url:
        from switchboard.dialer.limits_redis import RedisLineLimiter

        inner: LineLimiter = RedisLineLimiter.from_url(
            redis_url,
            socket_timeout=None,
            originations_per_second=scenario.rate,
            tz=TEHRAN,
            prefix=f"bench:{uuid.uuid4().hex}",
        )
    else:
        inner = MemoryLineLimiter(scenario.rate, tz=TEHRAN)
    limiter = TimedLimiter(inner)
    redis_cpu0 = await redis_cpu(inner) if redis_url else 0.0
    policy = CompliancePolicy(default_timezone="+0330")
    people = [ContactState(f"+98912{i:07d}", timezone="Asia/Tehran") for i in range(contacts)]
    events: list[tuple[float, int, int, OutboundLine]] = []
    calls: set[asyncio.Task[None]] = set()
    skipped = 0
    last_start = 0.0
    t_begin = clock.now().timestamp()

    async def call(grant: Grant, seconds: float) -> None:
        await asyncio.sleep(seconds)
        events.append((clock.now().timestamp(), 0, len(events), grant.line))
        await limiter.release(grant)

    cpu0 = time.process_time()
    for person in people:
        if not isinstance(evaluate(person, clock.now(), policy, on_dnc=False), Allowed):
            skipped += 1
            continue
        grant = await acquire_line(limiter, scenario.lines, scenario.scenario_limit)
        assert grant is not None
        last_start = grant.at.timestamp()
        events.append((last_start, 1, len(events), grant.line))
        task = asyncio.ensure_future(call(grant, rng.uniform(*DURATION)))
        calls.add(task)
        task.add_done_callback(calls.discard)
    loop_cpu = time.process_time() - cpu0
    await asyncio.gather(*calls)
    redis_spent = (await redis_cpu(inner) - redis_cpu0) if redis_url else 0.0
    if redis_url:
        await inner.reset()  # type: ignore[attr-defined]
    await inner.aclose()

    audit = LimitAudit(
        originations_per_second=scenario.rate, tz=TEHRAN, tolerance=1e-4 if redis_url else 1e-6
    )
    for t, kind, _, line in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        if kind:
            audit.start(line, t)
        else:
            audit.end(line)
    started = audit.outbound_starts
    mean = sum(DURATION) / 2
    optimum = optimum_makespan(started, scenario.lines, scenario.rate, mean)
    achieved = last_start - t_begin
    return {
        "starts": started,
        "skipped": skipped,
        "violations": len(audit.violations),
        "optimum_s": optimum,
        "achieved_s": achieved,
        "efficiency": optimum / achieved if achieved > 0 else float("nan"),
        "decisions": limiter.decisions,
        "cpu_per_decision_us": limiter.cpu / max(limiter.decisions, 1) * 1e6,
        "cpu_per_start_us": loop_cpu / max(started, 1) * 1e6,
        "redis_per_decision_us": redis_spent / max(limiter.decisions, 1) * 1e6,
        "first_violation": audit.violations[0] if audit.violations else "",  # type: ignore[dict-item]
    }


async def redis_cpu(limiter: LineLimiter) -> float:
    """Redis server CPU seconds so far (user + system), to show what a decision costs there."""
    info = await limiter.client.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--scenarios", default="line", help="comma-separated: line, rate, scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--redis", default="", help="run against RedisLineLimiter at this URL instead of in-process"
    )
    args = parser.parse_args()
    lines = many_lines(args.lines, args.contacts)
    mean = sum(DURATION) / 2
    lines_total = sum(line_rate(ln, mean) for ln in lines)
    n = len(lines)
    # The global rate sits just above the sum of line rates (line-bound) or well below (rate-bound).
    fast = round(max(2.0, lines_total * 1.2), 1)
    slow = round(max(0.5, lines_total / 4), 1)
    per_min = max(10, int(lines_total * 60 / 3))
    every = {
        "line": Scenario(f"line-bound ({n} mixed lines, {fast}/s global)", lines, rate=fast),
        "rate": Scenario(f"global-rate-bound ({n} mixed lines, {slow}/s global)", lines, rate=slow),
        "scenario": Scenario(f"scenario-bound ({n} mixed lines, scenario {per_min}/min, {fast}/s global)",
                             lines, rate=fast, scenario_limit=ScenarioLimit("promo", per_minute=per_min)),
    }
    scenarios = [every[name.strip()] for name in args.scenarios.split(",") if name.strip()]
    print(
        f"backend: {'redis ' + args.redis if args.redis else 'in-process'}; contacts: {args.contacts}; "
        f"call length uniform {DURATION[0]:.0f}-{DURATION[1]:.0f} s; sum of line rates {lines_total:.3f}/s"
    )
    for ln in lines[:10]:
        bound = "concurrent" if ln.limits.max_concurrent / mean < ln.limits.per_minute / 60 else "per-minute"
        print(
            f"  {ln.id}: conc {ln.limits.max_concurrent:>2} min {ln.limits.per_minute:>2} day {ln.limits.per_day:>5}"
            f" -> {line_rate(ln, mean):.3f}/s ({bound}-bound)"
        )
    if n > 10:
        print(f"  ... {n - 10} more lines cycling through the same limits")
    totals = {"violations": 0, "decisions": 0, "cpu": 0.0}
    for scenario in scenarios:
        wall0 = time.perf_counter()
        limited = scenario.scenario_limit
        if limited is not None and limited.per_minute is not None:
            # The scenario's per-minute limit caps the whole campaign like a global rate does.
            scenario_for_opt = Scenario(
                scenario.name, lines, rate=min(scenario.rate, limited.per_minute / 60.0)
            )
        else:
            scenario_for_opt = scenario
        result = run_virtual(run(scenario, args.contacts, args.seed, args.redis or None), start=START)
        if scenario_for_opt is not scenario:
            result["optimum_s"] = optimum_makespan(int(result["starts"]), lines, scenario_for_opt.rate, mean)
            result["efficiency"] = result["optimum_s"] / result["achieved_s"]
        wall = time.perf_counter() - wall0
        print(f"\n[{scenario.name}]")
        print(f"  originations: {result['starts']} (skipped by compliance: {result['skipped']})")
        print(f"  violations: {result['violations']} {result['first_violation']}")
        print(
            f"  last start at {result['achieved_s']:.0f} s virtual; limit-bound optimum {result['optimum_s']:.0f} s"
            f" -> throughput {100 * float(result['efficiency']):.2f}% of optimum"
        )
        print(
            f"  decisions: {result['decisions']} ({result['decisions'] / max(int(result['starts']), 1):.2f} per start); "
            f"CPU {result['cpu_per_decision_us']:.1f} us/decision, {result['cpu_per_start_us']:.1f} us/origination "
            f"(loop total); wall {wall:.1f} s"
        )
        if args.redis:
            print(f"  Redis server CPU {result['redis_per_decision_us']:.1f} us/decision (one script call each)")
        totals["violations"] += int(result["violations"])
        totals["decisions"] += int(result["decisions"])
        totals["cpu"] += float(result["cpu_per_decision_us"]) * int(result["decisions"])
    backend = "redis" if args.redis else "in-process"
    print(f"dialer: {args.contacts} contacts x {n} lines, {totals['violations']} violations, "
          f"{totals['cpu'] / max(totals['decisions'], 1):.1f} us CPU per decision ({backend})")


if __name__ == "__main__":
    main()
