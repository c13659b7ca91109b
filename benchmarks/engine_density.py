"""How many concurrent calls one engine process carries: N simulated calls at once on the virtual
clock with instant (text-mode) speech.

Prints calls/s (real time), CPU seconds per call, p50/p99 step dispatch latency (real time from the
virtual clock reaching a step's wake-up to the step starting: the queueing delay every call sees when
all N wake together), and RSS per concurrent call.

    .venv/bin/python benchmarks/engine_density.py --calls 100 1000 5000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import time
from pathlib import Path

from switchboard.clock import VirtualClockLoop
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator
from switchboard.engine.services import EngineServices
from switchboard.flows.registry import ScenarioRegistry
from switchboard.simulation import simulate
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import AnswerAfter, CallerFile, CallerScript, OperatorScript, Reply

ROOT = Path(__file__).resolve().parents[1]
REPLIES = [[Reply(say="بله حتما")], [Reply(say="نه ممنون")], [Reply(say="شماره منو از کجا دارید"), Reply(say="آره")],
           [Reply(say="yes, I'm interested")], [Reply(silence=True)]]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n: int, spread: float) -> dict[str, float]:
    registry = ScenarioRegistry(ROOT / "scenarios")
    scenarios = [registry.get("salehi_language"), registry.get("agrad_marketing")]
    lags: list[float] = []
    loop = VirtualClockLoop()
    peak = {"rss": 0.0, "live": 0}

    def observe(_: str) -> None:
        lags.append(time.perf_counter() - loop.last_advance_real)

    operators = [OperatorScript(phone=f"0911{i:07d}") for i in range(n)]  # enough operators for everyone
    services = EngineServices(step_observer=observe)
    for sc in scenarios:
        assert sc is not None
        services.operators.set_roster(sc.name, "outbound", [Operator(o.phone) for o in operators])
    engine = FlowEngine(services)
    network = SimNetwork()
    network.add_operators(operators)
    callers = [CallerScript(phone=f"0912{i:07d}", replies=REPLIES[i % len(REPLIES)], talk_seconds=120,
                            answer=AnswerAfter(after_seconds=1.0 + (i % 97) * 0.05 * spread))
               for i in range(n)]

    async def sample() -> None:
        # All calls are alive from t<=6 s (answer) until at least t=20 s: sample RSS then.
        await asyncio.sleep(12)
        peak["rss"] = rss_mb()
        peak["live"] = sum(1 for t in asyncio.all_tasks() if not t.done()) - 2

    async def campaign() -> list[str]:
        sampler = asyncio.create_task(sample())
        ctxs = await asyncio.gather(*(simulate(engine, network, scenarios[i % 2], CallerFile(caller=c))  # type: ignore[arg-type]
                                      for i, c in enumerate(callers)))
        await sampler
        return [c.result or "" for c in ctxs]

    gc.collect()
    base = rss_mb()
    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.set_event_loop(loop)
    try:
        outcomes = loop.run_until_complete(campaign())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert all(outcomes), "every call must end with a result"
    lags.sort()
    return {
        "calls": n, "wall_s": wall, "calls_per_s": n / wall, "cpu_ms_per_call": 1000 * cpu / n,
        "steps": len(lags), "p50_dispatch_ms": 1000 * statistics.median(lags),
        "p99_dispatch_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "rss_kb_per_call": 1024 * max(0.0, peak["rss"] - base) / n, "live_tasks": peak["live"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--spread", type=float, default=1.0,
                        help="0 = every call answers at the same instant (worst case); 1 = over ~5 s")
    args = parser.parse_args()
    print(f"{'calls':>6} {'wall s':>8} {'calls/s':>9} {'CPU ms/call':>12} {'steps':>7} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'RSS KB/call':>12}")
    for n in args.calls:
        r = run(n, args.spread)
        print(f"{r['calls']:>6} {r['wall_s']:>8.2f} {r['calls_per_s']:>9.0f} {r['cpu_ms_per_call']:>12.2f} "
              f"{r['steps']:>7} {r['p50_dispatch_ms']:>8.2f} {r['p99_dispatch_ms']:>8.2f} "
              f"{r['rss_kb_per_call']:>12.1f}")


if __name__ == "__main__":
    main()
