"""Soak: the production path carrying N concurrent simulated calls, cycling, for a long time on the
real clock — does anything grow that should not?

The real dialer (limits, compliance, the built-in panel's leasing), the real engine and scenarios,
the results outbox with its deliverer, the store (SQLite in a temporary folder, or DATABASE_URL), on
the simulated phone network in text mode. A feeder keeps fresh contacts coming; callers answer or not,
talk, say yes or no, ask for operators, hang up. Every call runs on real timers (no virtual clock).

Prints, after a warm-up: RSS then and at the end (growth in %), asyncio tasks and open file
descriptors before the start and after a graceful stop (leaks), calls completed and their results.

    .venv/bin/python benchmarks/soak.py                       # 1,000 calls for 30 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2 --calls 300 --talk 10 40   # the CI variant (test_soak.py)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from switchboard import clock  # noqa: E402
from switchboard.app import build_node  # noqa: E402
from switchboard.engine.operators import Operator  # noqa: E402
from switchboard.settings import Settings  # noqa: E402
from switchboard.store import NewContact  # noqa: E402
from switchboard.telephony.sim.backend import SimBackend  # noqa: E402
from switchboard.telephony.sim.network import SimNetwork  # noqa: E402
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, OperatorScript, Reply  # noqa: E402

REPLIES = [[Reply(say="بله حتما")], [Reply(say="نه ممنون")], [Reply(say="شماره منو از کجا دارید"), Reply(say="آره")],
           [Reply(say="yes please")], [Reply(silence=True), Reply(silence=True)], [Reply(hangup=True)],
           [Reply(dtmf="1")]]
LINES = 4


def settle() -> None:
    """Collect garbage and hand the allocator's free pages back to the OS (glibc keeps freed memory
    in its arenas; that is slack, not a leak), so RSS readings compare what is really held."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


TALK = [120.0, 300.0]  # seconds a caller talks with an operator (--talk)


def script_for(number: str, _variables: dict[str, str]) -> CallerScript:
    """A behaviour derived from the number (repeatable): 8 % do not answer, 5 % are busy, the rest
    answer after 0.5-5 s, reply, and talk TALK seconds with an operator if they get one."""
    rng = random.Random(int(hashlib.sha256(number.encode()).hexdigest()[:8], 16))
    roll = rng.random()
    if roll < 0.08:
        return CallerScript(phone=number, answer="no_answer")
    if roll < 0.13:
        return CallerScript(phone=number, answer="busy")
    return CallerScript(phone=number, answer=AnswerAfter(after_seconds=round(rng.uniform(0.5, 5), 2)),
                        replies=list(rng.choice(REPLIES)), talk_seconds=round(rng.uniform(*TALK), 1),
                        hangup_after=rng.choice([None, None, None, 8.0, 30.0]))


async def soak(minutes: float, calls: int, warmup: float, database_url: str) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-soak-"))
    lines = ",".join(f"0219100{i:04d}" for i in range(LINES))
    settings = Settings(_env_file=None, data_dir=workdir / "data", logs_dir=workdir / "logs",  # type: ignore[call-arg]
                        database_url=database_url, scenarios_dir=ROOT / "scenarios", telephony_backend="sim",
                        outbound_numbers=lines, max_concurrent_calls=calls // LINES + 1,
                        max_calls_per_minute=1_000_000, max_calls_per_day=1_000_000_000,
                        max_originations_per_second=500, batch_size=250, calling_hours_start="00:00",
                        calling_hours_end="23:59", retry_delay_seconds=30, daily_attempts_per_contact=3,
                        origination_timeout=5, operator_timeout=5, log_level="WARNING", panel_timezone="+0000")
    operators = [OperatorScript(phone=f"0911{i:07d}", answer=True if i % 7 else "busy") for i in range(300)]
    network = SimNetwork(origination_timeout=5.0)
    network.add_operators(operators)
    backend = SimBackend(network=network, default_script=script_for)

    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    node = await build_node(settings, backend=backend)
    node.engine.services.operators.set_roster(None, "outbound", [Operator(o.phone) for o in operators])
    node.engine.services.operators.set_roster(None, "inbound", [Operator(o.phone) for o in operators])
    fds_before = open_fds()
    campaign = await node.store.campaigns.get_or_create("soak", company=settings.company)
    done = Counter()
    finished = [0]

    def ended(ctx: object) -> None:
        finished[0] += 1
        done[getattr(ctx, "result", None) or "unknown"] += 1

    node.dialer.on_call_end = ended
    next_number = [0]

    async def feed() -> None:
        """Keep about two batches of fresh contacts waiting."""
        while True:
            counts = await node.store.contacts.counts_by_status(settings.company)
            if counts.get("pending", 0) < 2 * calls:
                fresh = []
                for _ in range(calls):
                    n = next_number[0]
                    next_number[0] += 1
                    national = f"912{1000000 + n % 8_000_000:07d}"
                    fresh.append(NewContact(phone="0" + national, phone_e164="+98" + national, phone_national=national,
                                            company=settings.company, campaign_id=campaign.id))
                await node.store.contacts.add_many(fresh)
            await asyncio.sleep(2)

    await node.deliverer.start()
    await node.dialer.start()
    feeder = asyncio.create_task(feed())
    runner = asyncio.create_task(node.dialer.run())
    started = time.monotonic()
    deadline = started + minutes * 60
    warm_at = started + warmup
    warm: dict[str, float] = {"rss": 0.0, "calls": 0, "blocks": 0, "live": 0}
    peak_tasks = 0
    samples: list[tuple[float, float, int]] = []
    while time.monotonic() < deadline:
        await asyncio.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        if not warm["rss"] and time.monotonic() >= warm_at:
            settle()
            warm = {"rss": rss_mb(), "calls": finished[0], "blocks": sys.getallocatedblocks(),
                    "live": node.dialer.active_calls}
        samples.append((time.monotonic() - started, rss_mb(), node.dialer.active_calls))
    settle()
    end_rss, end_calls, live_at_end = rss_mb(), finished[0], node.dialer.active_calls
    end_blocks = sys.getallocatedblocks()
    elapsed = time.monotonic() - started
    feeder.cancel()
    await asyncio.gather(feeder, return_exceptions=True)
    await node.close()  # graceful: no new calls, calls in progress finish, results flushed
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await asyncio.sleep(0.5)  # let cancelled callbacks and connection closes settle
    gc.collect()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return {
        "minutes": minutes, "calls": calls, "elapsed": elapsed, "finished": finished[0], "results": dict(done),
        "warm_rss": warm["rss"], "warm_calls": warm["calls"], "end_rss": end_rss, "end_calls": end_calls,
        "warm_blocks": warm["blocks"], "end_blocks": end_blocks, "warm_live": warm["live"],
        "live_at_end": live_at_end, "tasks_before": tasks_before - 1, "tasks_after": len(leftover),
        "leftover": [t.get_name() + ":" + repr(t.get_coro())[:80] for t in leftover][:5],
        "fds_before": fds_before, "fds_after": open_fds(), "peak_tasks": peak_tasks, "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=1000, help="concurrent calls the dialer may carry")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline "
                        "(default: a fifth of the run, at least 60 s)")
    parser.add_argument("--talk", type=float, nargs=2, default=list(TALK), metavar=("MIN", "MAX"),
                        help="seconds callers talk with an operator (long calls keep many calls live: the "
                             "dialer on SQLite starts about 5-10 calls a second on a busy 2-core machine)")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", ""))
    args = parser.parse_args()
    TALK[:] = args.talk  # type: ignore[index]
    warmup = args.warmup if args.warmup is not None else max(60.0, args.minutes * 60 / 5)
    logging.basicConfig(level=logging.ERROR)  # abandoned-call warnings are expected here
    r = asyncio.run(soak(args.minutes, args.calls, warmup, args.database_url))
    growth = 100.0 * (r["end_rss"] - r["warm_rss"]) / r["warm_rss"] if r["warm_rss"] else float("nan")
    rate = r["finished"] / r["elapsed"] if r["elapsed"] else 0.0
    results = ", ".join(f"{k}={v}" for k, v in sorted(r["results"].items(), key=lambda kv: -kv[1]))
    print(f"soak: {r['calls']} concurrent simulated calls cycling for {r['elapsed'] / 60:.1f} min "
          f"({'PostgreSQL' if args.database_url else 'SQLite'}, real clock, text-mode speech)")
    print(f"calls completed: {r['finished']} ({rate:.1f}/s; peak asyncio tasks {r['peak_tasks']}; "
          f"{r['live_at_end']} calls live at the end of the measurement)")
    print(f"results: {results}")
    for at, rss, live in r["samples"][:: max(1, len(r["samples"]) // 8)]:
        print(f"  t={at / 60:5.1f} min  RSS {rss:7.1f} MB  live calls {live}")
    print(f"RSS after warm-up {r['warm_rss']:.1f} MB ({r['warm_calls']} calls done, {r['warm_live']} live) -> "
          f"end {r['end_rss']:.1f} MB ({r['end_calls']} calls done, {r['live_at_end']} live): growth {growth:+.2f} %")
    print(f"Python heap blocks: {r['warm_blocks']:,} after warm-up -> {r['end_blocks']:,} at the end "
          f"({100.0 * (r['end_blocks'] - r['warm_blocks']) / max(1, r['warm_blocks']):+.2f} %)")
    print(f"asyncio tasks: {r['tasks_before']} before start, {r['tasks_after']} after a graceful stop "
          f"(leaked {r['tasks_after'] - r['tasks_before']}){' ' + str(r['leftover']) if r['leftover'] else ''}")
    print(f"file descriptors: {r['fds_before']} before start, {r['fds_after']} after a graceful stop "
          f"(leaked {r['fds_after'] - r['fds_before']})")
    ok = growth < 5.0 and r["tasks_after"] <= r["tasks_before"] and r["fds_after"] <= r["fds_before"]
    print(f"soak: {'PASS' if ok else 'FAIL'} (RSS growth < 5 %, no leaked tasks, no leaked file descriptors)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
