"""Requests per second of the built-in panel's dialer contract (next-batch, report-result).

The panel runs under uvicorn on 127.0.0.1 in its own process (as in production); this process
drives it with PanelClient over pooled keep-alive connections. Bounded: a fixed number of requests.

    .venv/bin/python benchmarks/panel_api.py [--db sqlite|postgresql+asyncpg://...] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from switchboard import clock

TOKEN = "bench-dialer-token"


def _serve(db_url: str, data_dir: str, conn) -> None:  # type: ignore[no-untyped-def]
    import logging

    import uvicorn

    from switchboard.panel.server import create_panel_app
    from switchboard.settings import Settings
    from switchboard.store import open_store

    logging.disable(logging.WARNING)

    async def main() -> None:
        settings = Settings(_env_file=None, data_dir=Path(data_dir), company="bench",  # type: ignore[call-arg]
                            builtin_panel_token=TOKEN)  # the contract is never served unauthenticated
        store = await open_store(settings, url=db_url)
        app = create_panel_app(store, settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", access_log=False, lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        conn.send(server.servers[0].sockets[0].getsockname()[1])
        await task
        await store.close()

    asyncio.run(main())


async def seed(db_url: str, data_dir: Path, contacts: int) -> None:
    from sqlalchemy import text

    from switchboard.settings import Settings
    from switchboard.store import NewContact, open_store
    from switchboard.store.db import create_engine

    if db_url.startswith("postgresql"):
        engine = create_engine(db_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    store = await open_store(Settings(_env_file=None, data_dir=data_dir), url=db_url)
    batch = []
    for i in range(contacts):
        phone = f"+98912{i:07d}"
        batch.append(NewContact(phone, phone, phone[3:], company="bench", attributes={"n": i}))
        if len(batch) == 2000:
            await store.contacts.add_many(batch)
            batch = []
    await store.contacts.add_many(batch)
    await store.close()


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc), so figures can be read apart from load."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, requests: int, concurrency: int, size: int, server_pid: int) -> None:
    from switchboard.panel.client import PanelClient
    from switchboard.panel.contract import ReportResultRequest

    async with PanelClient(url, TOKEN, company="bench", retries=0, max_connections=concurrency) as client:
        await client.next_batch(0)  # warm the connection pool

        async def phase(name: str, make, n: int) -> list:  # type: ignore[no-untyped-def]
            latencies: list[float] = []
            results: list = []
            queue = iter(range(n))

            async def worker() -> None:
                for i in queue:
                    t0 = time.perf_counter()
                    results.append(await make(i))
                    latencies.append(time.perf_counter() - t0)

            cpu0 = cpu_seconds(server_pid)
            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(server_pid) - cpu0
            lat = sorted(latencies)
            p50, p95 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95) - 1] * 1000
            print(
                f"{name:<30} {n:>5} req {n / elapsed:>7.1f} req/s  p50 {p50:6.1f} ms"
                f"  p95 {p95:6.1f} ms  server CPU {cpu / n * 1000:5.2f} ms/req"
            )
            return results

        batches = await phase(f"next-batch (size={size})", lambda i: client.next_batch(size), requests)
        numbers = [n for b in batches for n in b.numbers]
        assert all(b.error is None for b in batches), [b.error for b in batches if b.error][:3]
        assert len({n.id for n in numbers}) == len(numbers), "a contact was handed out twice"
        per_batch = len(numbers) / max(1, requests)
        print(f"{'  contacts leased':<30} {len(numbers):>5}     ({per_batch:.0f} per batch, none twice)")

        reports = numbers[: requests * 4]
        statuses = ["not_interested", "missed", "connected_to_operator", "hangup", "failed:trunk"]

        def report(i: int):  # type: ignore[no-untyped-def]
            n = reports[i]
            body = ReportResultRequest(
                company="bench",
                number_id=n.id,
                phone_number=n.phone_number,
                status=statuses[i % len(statuses)],
                attempted_at=clock.now(),
            )
            return client.report_result(body, idempotency_key=f"bench-{n.id}")

        outs = await phase("report-result (new keys)", report, len(reports))
        assert all(o.delivered and not o.duplicate for o in outs)
        dup = await phase("report-result (replayed keys)", report, min(len(reports), requests))
        assert all(o.delivered and o.duplicate for o in dup)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a SQLAlchemy async URL")
    ap.add_argument("--contacts", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=300, help="next-batch requests (reports: 4x)")
    ap.add_argument("--size", type=int, default=50, help="batch size")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    db_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}" if args.db == "sqlite" else args.db
    asyncio.run(seed(db_url, tmp, args.contacts))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(db_url, str(tmp), child), daemon=True)
    server.start()
    try:
        port = parent.recv()
        backend = db_url.split(":", 1)[0]
        print(
            f"built-in panel on 127.0.0.1:{port}, {backend}, {args.contacts} contacts, "
            f"concurrency {args.concurrency}"
        )
        print(
            f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])} "
            f"on {__import__('os').cpu_count()} CPUs"
        )
        asyncio.run(drive(f"http://127.0.0.1:{port}", args.requests, args.concurrency, args.size, server.pid))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
