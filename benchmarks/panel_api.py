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

    from switchboard.app import run_server_loop

    run_server_loop(main())  # as `switchboard panel` runs (uvloop when installed)


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


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client (asyncio streams): the load generator must cost far less
    than the server it measures, which httpx does not on a small machine."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\n{headers}\r\n")
        self.writer.write(head.encode() + body)
        assert self.reader is not None
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        data = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(url: str, requests: int, concurrency: int, size: int, server_pid: int) -> tuple[float, float]:
    """Checks the contract with PanelClient first, then measures with `RawHttp`; returns the
    report-result and next-batch rates (req/s)."""
    import json
    from urllib.parse import urlsplit

    from switchboard.panel.client import PanelClient
    from switchboard.panel.contract import ReportResultRequest, parse_next_batch

    async with PanelClient(url, TOKEN, company="bench", retries=0) as client:
        check = await client.next_batch(5)  # the real client parses the fast path's JSON
        assert check.error is None and len(check.numbers) == 5, check.error
        out = await client.report_result(ReportResultRequest(
            company="bench", number_id=check.numbers[0].id, phone_number=check.numbers[0].phone_number,
            status="missed", attempted_at=clock.now()), idempotency_key="bench-check")
        assert out.delivered and not out.duplicate

    parts = urlsplit(url)
    conns = [RawHttp(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(concurrency)]

    async def phase(name: str, make, n: int, conns_used: int) -> tuple[list, float]:  # type: ignore[no-untyped-def]
        latencies: list[float] = []
        results: list = []
        queue = iter(range(n))

        async def worker(conn: RawHttp) -> None:
            for i in queue:
                t0 = time.perf_counter()
                results.append(await make(conn, i))
                latencies.append(time.perf_counter() - t0)

        cpu0 = cpu_seconds(server_pid)
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns[:conns_used]))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server_pid) - cpu0
        lat = sorted(latencies)
        p50, p95 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95) - 1] * 1000
        rate = n / elapsed
        print(f"{name:<30} {n:>6} req {rate:>8.1f} req/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"
              f"  server CPU {cpu / n * 1000:5.2f} ms/req (= {n / cpu if cpu else 0:,.0f} req/s per core)")
        return results, rate

    async def next_batch(conn: RawHttp, i: int):  # type: ignore[no-untyped-def]
        status, data = await conn.request("GET", f"/api/dialer/next-batch?size={size}&company=bench")
        assert status == 200, data[:200]
        return json.loads(data)  # the contract parser (PanelClient, above) is not what is measured

    batches, nb_rate = await phase(f"next-batch (size={size})", next_batch, requests, min(concurrency, 8))
    assert parse_next_batch(batches[-1]).error is None
    numbers = [n for b in batches for n in parse_next_batch(b).numbers]
    assert len({n.id for n in numbers}) == len(numbers), "a contact was handed out twice"
    print(f"{'  contacts leased':<30} {len(numbers):>6}     ({len(numbers) / max(1, requests):.0f} per batch, "
          "none twice)")
    statuses = ["not_interested", "missed", "connected_to_operator", "hangup", "failed:trunk"]
    bodies = [json.dumps({"company": "bench", "number_id": n.id, "phone_number": n.phone_number,
                          "status": statuses[i % len(statuses)], "attempted_at": clock.now().isoformat()}).encode()
              for i, n in enumerate(numbers)]

    def report(conn: RawHttp, i: int):  # type: ignore[no-untyped-def]
        async def go() -> bool:
            status, data = await conn.request("POST", "/api/dialer/report-result", bodies[i],
                                              f"Idempotency-Key: bench-{i}\r\n")
            assert status == 200, data[:200]
            return b'"duplicate":true' in data
        return go()

    outs, rr_rate = await phase("report-result (new keys)", report, len(bodies), concurrency)
    assert not any(outs)
    dup, _ = await phase("report-result (replayed keys)", report, min(len(bodies), requests * 4), concurrency)
    assert all(dup)
    for conn in conns:
        await conn.close()
    return rr_rate, nb_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a SQLAlchemy async URL")
    ap.add_argument("--contacts", type=int, default=60_000)
    ap.add_argument("--requests", type=int, default=1000, help="next-batch requests (one report per number)")
    ap.add_argument("--size", type=int, default=50, help="batch size")
    ap.add_argument("--concurrency", type=int, default=32, help="connections (next-batch uses up to 8)")
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
        rr, nb = asyncio.run(drive(f"http://127.0.0.1:{port}", args.requests, args.concurrency, args.size,
                                   server.pid))
    finally:
        server.terminate()
        server.join(5)
    print(f"report-result: {rr:.0f} req/s, next-batch: {nb:.0f} req/s")


if __name__ == "__main__":
    main()
