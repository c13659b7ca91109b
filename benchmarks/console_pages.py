"""Render times of the console's pages on a store with many calls.

Seeds N finished calls spread over 30 days (4 scenarios, 3 lines, a realistic mix of results,
intents and personas), serves the console as the demo does (a real-time server thread with its own
connection pool) and times each page as a signed-in supervisor: the first request (cold: reports
are cached for 30 s after it) and p50 / p95 of the repeats, plus a full CSV export's throughput.
Bounded: a fixed number of requests.

    .venv/bin/python benchmarks/console_pages.py [--calls 100000] [--repeat 15] [--db postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

SCENARIOS = ["agrad_marketing", "salehi_language", "reception", "spring_offer"]
LINES = ["02191000001", "02191000002", "02191000003"]
RESULTS = [("connected_to_operator", 12), ("not_interested", 25), ("missed", 30), ("hangup", 10),
           ("disconnected", 5), ("failed:stt_timeout", 2), ("unknown", 6), ("failed:do_not_call", 3),
           ("inbound_call", 7)]
INTENTS = ["yes", "no", "stop", "unknown", None]
PERSONAS = [None, None, "reception", "sales", "complaints"]


async def seed(settings, calls: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Bulk-insert the calls; returns (a call id, a session cookie of a supervisor)."""
    from sqlalchemy import insert, text

    from switchboard.panel.auth_accounts import AccountService
    from switchboard.store import open_store
    from switchboard.store.accounts import AccountsRepo
    from switchboard.store.db import create_engine
    from switchboard.store.models import CallEvent, CallRecord

    url = settings.resolved_database_url()
    if url.startswith("postgresql"):
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    store = await open_store(settings)
    rng = random.Random(11)
    results = [r for r, w in RESULTS for _ in range(w)]
    now = datetime.now(UTC)
    rows = []
    for i in range(calls):
        started = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        result = rng.choice(results)
        answered = result not in ("missed", "failed:do_not_call")
        talk = rng.uniform(5, 180) if answered else 0
        rows.append(dict(
            id=f"out-{i:012d}", company="default", direction="inbound" if result == "inbound_call" else "outbound",
            scenario=rng.choice(SCENARIOS), phone=f"0912{i:07d}", phone_e164=f"+98912{i:07d}",
            line=None if result == "failed:do_not_call" else rng.choice(LINES),
            operator="09121111111" if result == "connected_to_operator" else None,
            originated_at=started, answered_at=started if answered else None,
            ended_at=started + timedelta(seconds=talk), created_at=started, result=result,
            intent=rng.choice(INTENTS) if answered else None, user_message="yes, I'm interested" if answered else None,
            transcripts=[], attributes={"persona": rng.choice(PERSONAS), "intent_path": "fallback",
                                        "usage": {"llm_prompt_tokens": rng.randint(0, 900),
                                                  "llm_completion_tokens": rng.randint(0, 90)}}))
    started = time.perf_counter()
    async with store.sessions.begin() as s:
        for i in range(0, len(rows), 5000):
            await s.execute(insert(CallRecord), rows[i:i + 5000])
        await s.execute(insert(CallEvent), [dict(call_id=rows[0]["id"], seq=k, at=rows[0]["originated_at"],
                                                 kind="step", data={"step": f"s{k}", "type": "say", "at": k})
                                            for k in range(30)])
    print(f"seeded {calls} calls in {time.perf_counter() - started:.1f} s ({store.dialect})")
    accounts = AccountService(AccountsRepo(store.sessions, store.dialect), settings)
    user = await accounts.create_user("bench", "supervisor", "benchmark-password")
    session = await accounts.start_session(user, ip="127.0.0.1", user_agent="bench")
    await store.close()
    return str(rows[0]["id"]), session.cookie


def timed(http: httpx.Client, path: str, repeat: int) -> tuple[list[float], int]:
    samples, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = http.get(path)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        size = len(r.content)
    return samples, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--db", default="", help="a PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()

    from switchboard.brain.services import build_brain
    from switchboard.flows.registry import ScenarioRegistry
    from switchboard.observability.live import LiveBoard
    from switchboard.settings import Settings
    from switchboard.web.node import NodeLink
    from switchboard.web.serve import ConsoleThread

    import logging

    logging.disable(logging.WARNING)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=args.db, panel_port=port,  # type: ignore[call-arg]
                            recordings_dir=Path(tmp) / "rec")
        call_id, cookie = asyncio.run(seed(settings, args.calls))
        registry = ScenarioRegistry(settings.scenarios_dir)
        link = NodeLink(registry=registry, brain=build_brain(settings), live=LiveBoard())
        web = ConsoleThread(settings, link, list_scenarios=registry.get_names)
        web.start()
        day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
        pages = [("/live", "live"), ("/calls", "calls, newest page"),
                 ("/calls?scenario=reception&result=missed", "calls, two filters"),
                 (f"/calls?since={day}&until={day}", "calls, one day"), ("/calls?offset=20000", "calls, page 400"),
                 (f"/calls/{call_id}", "one call"), ("/reports", "report by scenario"),
                 ("/reports?group_by=day", "report by day + chart"), ("/reports?group_by=persona", "report by persona"),
                 ("/api/v1/usage/summary?group_by=line", "usage summary API"), ("/campaigns", "campaigns"),
                 ("/scenarios", "scenarios"), ("/scenarios/agrad_marketing", "scenario + diagram")]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Cookie": f"sb_session={cookie}"},
                              timeout=120) as http:
                http.get("/healthz")  # open the connection
                for path, label in pages:
                    samples, size = timed(http, path, args.repeat + 1)
                    first, rest = samples[0], samples[1:]
                    q = statistics.quantiles(rest, n=20)
                    print(f"{label:<28} first {first:7.1f} ms  p50 {statistics.median(rest):7.1f} ms  "
                          f"p95 {q[18]:7.1f} ms  {size / 1024:6.1f} KiB")
                t = time.perf_counter()
                r = http.get("/calls/export.csv")
                took = time.perf_counter() - t
                rows = r.content.count(b"\n") - 1
                print(f"{'CSV export, every call':<28} {rows} rows in {took:.2f} s ({rows / took:,.0f} rows/s, "
                      f"{len(r.content) / 1e6:.1f} MB)")
        finally:
            web.stop()


if __name__ == "__main__":
    main()
