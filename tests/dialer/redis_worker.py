"""One engine-like process for the two-process Redis test: dials through a RedisLineLimiter for a
fixed real-time span and prints one JSON line per call (start/end epoch seconds, line)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

from switchboard import clock
from switchboard.dialer.limits_redis import RedisLineLimiter
from switchboard.dialer.lines import Grant, LineLimits, OutboundLine
from switchboard.dialer.selection import acquire_line

LINES = [
    OutboundLine("p1", "+982191000001", limits=LineLimits(max_concurrent=3, per_minute=12, per_day=1000)),
    OutboundLine("p2", "+982191000002", limits=LineLimits(max_concurrent=2, per_minute=1000, per_day=7)),
]
RATE = 8.0


async def main(url: str, prefix: str, seconds: float, seed: int) -> None:
    limiter = RedisLineLimiter.from_url(url, originations_per_second=RATE, prefix=prefix, poll_interval=0.05)
    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    calls: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)

    async def call(grant: Grant, started: float) -> None:
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        records.append({"line": grant.line.id, "start": started, "end": clock.now().timestamp()})
        await limiter.release(grant)

    while True:
        grant = await acquire_line(limiter, LINES, stop=stop)
        if grant is None:
            break
        task = asyncio.ensure_future(call(grant, grant.at.timestamp()))
        calls.add(task)
        task.add_done_callback(calls.discard)
    await asyncio.gather(*calls)
    await limiter.aclose()
    for record in records:
        print(json.dumps(record))


if __name__ == "__main__":
    started = time.time()
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
