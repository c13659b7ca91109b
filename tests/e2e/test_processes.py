"""Real dialer processes (`tests/e2e/run_dialer.py`, the node built from env Settings, simulator on
the wall clock): one killed with SIGKILL mid-campaign and a second one finishing the job on the
same SQLite file; and two at once against one PostgreSQL and one Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.dialer.lines import LineLimits, OutboundLine
from switchboard.settings import Settings
from switchboard.store import open_store

from tests.e2e.harness import ROOT, all_calls, all_contacts, all_outbox, all_receipts, dialed, e2e_settings, \
    iran_phones, recount, seed

LINES = ["02191000001", "02191000002"]


def _env(settings: Settings, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "PANEL_"))}
    env.update(
        PYTHONPATH=str(ROOT), DATABASE_URL=db_url, REDIS_URL="", SCENARIOS_DIR=str(settings.scenarios_dir),
        DATA_DIR=str(settings.data_dir), LOGS_DIR=str(settings.logs_dir), COMPANY=settings.company,
        TELEPHONY_BACKEND="sim", SIM_AUDIO="false", SIM_VIRTUAL_CLOCK="false", OUTBOUND_NUMBERS=",".join(LINES),
        MAX_CONCURRENT_CALLS="2", MAX_CALLS_PER_MINUTE="600", MAX_CALLS_PER_DAY="10000",
        MAX_ORIGINATIONS_PER_SECOND="20", CALLING_HOURS_START="00:00", CALLING_HOURS_END="23:59",
        PANEL_TIMEZONE="+0000", BATCH_SIZE="6", LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def _dialer(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.e2e.run_dialer"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=log.open("w"))


def _finish(proc: subprocess.Popen[str], timeout: float) -> dict:  # type: ignore[type-arg]
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]


async def _seed(settings: Settings, url: str, phones: list[str]) -> None:
    store = await open_store(settings, url=url)
    try:
        await seed(store, settings, phones)
    finally:
        await store.close()


async def _snapshot(settings: Settings, url: str):  # type: ignore[no-untyped-def]
    store = await open_store(settings, url=url)
    try:
        return (await all_calls(store), await all_contacts(store), await all_outbox(store),
                await all_receipts(store))
    finally:
        await store.close()


def test_killed_mid_campaign_nothing_double_dialed_nothing_lost(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, "e2e_quick")
    db = tmp_path / "data" / "switchboard.db"
    url = f"sqlite+aiosqlite:///{db}"
    phones = iran_phones(30)
    asyncio.run(_seed(settings, url, phones))
    env = _env(settings, url, E2E_LEASE_SECONDS="3", E2E_CLAIM_SECONDS="3",
               E2E_PROMPT_SECONDS="1.0", E2E_WATCHDOG_SECONDS="40")

    first = _dialer(env, tmp_path / "first.log")
    deadline = time.monotonic() + 30
    ended = 0
    unfinished_work = False  # kill while something is half done: a result not yet delivered, or
    while time.monotonic() < deadline and not (ended >= 8 and unfinished_work):  # contacts leased, not dialed
        time.sleep(0.02)
        with sqlite3.connect(db) as conn:
            try:
                ended = conn.execute("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL").fetchone()[0]
                pending = conn.execute("SELECT count(*) FROM results_outbox WHERE status='pending'").fetchone()[0]
                leased_now = conn.execute("SELECT count(*) FROM contacts WHERE status='leased'").fetchone()[0]
                in_flight_now = conn.execute("SELECT count(*) FROM calls WHERE ended_at IS NULL").fetchone()[0]
            except sqlite3.OperationalError:  # not migrated yet
                ended = pending = leased_now = in_flight_now = 0
        unfinished_work = pending > 0 or leased_now > in_flight_now
    assert ended >= 8, "the first dialer never got going"
    first.send_signal(signal.SIGKILL)  # kill -9: no graceful stop, no flush
    first.wait(timeout=10)
    killed_at = datetime.now(UTC)
    calls_at_kill, contacts_at_kill, outbox_at_kill, _ = asyncio.run(_snapshot(settings, url))
    in_flight = {c.number_id for c in calls_at_kill if c.ended_at is None}
    leased = {str(c.id) for c in contacts_at_kill if c.status == "leased"}
    assert leased and len(in_flight) <= 2 * len(LINES)
    assert any(o.status == "pending" for o in outbox_at_kill) or len(leased) > len(in_flight)

    second = _dialer(env, tmp_path / "second.log")
    stats = _finish(second, timeout=90)
    calls, contacts, outbox, receipts = asyncio.run(_snapshot(settings, url))

    # Every contact reached its final state once. A call the kill cut off was reported
    # failed:interrupted by the second process (an attempt, retried), every other contact has one.
    assert len(contacts) == len(phones)
    assert all(c.status == "done" and c.last_result == "not_interested" for c in contacts)
    assert all(c.attempts == (2 if str(c.id) in in_flight else 1) for c in contacts)
    out = dialed(calls)
    interrupted = [c for c in out if c.result == "failed:interrupted"]
    assert {c.number_id for c in interrupted} == in_flight
    assert all(c.ended_at is not None for c in out)
    finished = Counter(c.number_id for c in out if c.result != "failed:interrupted")
    assert all(finished[str(c.id)] == 1 for c in contacts), finished
    # Each cut-off contact was dialed again (once), after the dead process's lease ran out, never
    # while another call to it could be live.
    by_number = defaultdict(list)
    for c in out:
        by_number[c.number_id].append(c)
    for number_id, rows in by_number.items():
        assert len(rows) <= 2
        if len(rows) == 2:
            assert number_id in in_flight
            assert max(r.originated_at for r in rows) > killed_at
    # Contacts leased but not dialed by the dead process came back and were dialed by the second.
    for number_id in leased - in_flight:
        assert len(by_number[number_id]) == 1
    assert stats["originated"] == len(phones) - len({c.number_id for c in calls_at_kill if c.ended_at is not None})
    # The outbox delivered everything exactly once: one row per call (the interrupted ones too),
    # all delivered, one panel receipt per key, no key applied twice.
    assert {o.call_id for o in outbox} == {c.id for c in out}
    assert all(o.status == "delivered" for o in outbox)
    keys = Counter(r.idempotency_key for r in receipts)
    assert set(keys) == {o.idempotency_key for o in outbox} and set(keys.values()) == {1}


@pytest.mark.postgres
@pytest.mark.redis
def test_two_dialers_share_one_postgres_and_one_redis(tmp_path, e2e_postgres_url, e2e_redis_url) -> None:  # type: ignore[no-untyped-def]
    company = f"e2e-{uuid.uuid4().hex[:8]}"  # its own Redis key prefix
    settings = e2e_settings(tmp_path, "e2e_quick", company=company)
    phones = iran_phones(40)
    asyncio.run(_seed(settings, e2e_postgres_url, phones))
    env = _env(settings, e2e_postgres_url, REDIS_URL=e2e_redis_url, E2E_PROMPT_SECONDS="0.6", BATCH_SIZE="4")

    procs = [_dialer(env, tmp_path / f"dialer{i}.log") for i in range(2)]
    stats = [_finish(p, timeout=90) for p in procs]
    calls, contacts, outbox, receipts = asyncio.run(_snapshot(settings, e2e_postgres_url))

    out = dialed(calls)
    # Both processes dialed; no contact was dialed by both (or twice by one).
    assert all(s["originated"] > 0 for s in stats), stats
    assert sum(s["originated"] for s in stats) == len(out) == len(phones)
    assert Counter(c.number_id for c in out).most_common(1)[0][1] == 1
    assert all(c.status == "done" and c.attempts == 1 for c in contacts)
    # Combined concurrency per line (and the shared originations-per-second bucket) held, on the
    # wall clock across two processes; and the shared limit was reached, so it was tested.
    lines = [OutboundLine(n, n, n, LineLimits(2, 600, 10000)) for n in LINES]
    audit = recount(out, lines, rate=20.0, tolerance=0.002)
    assert audit.violations == []
    assert max(audit.max_active.values()) == 2
    assert all(o.status == "delivered" for o in outbox)
    assert Counter(r.idempotency_key for r in receipts).most_common(1)[0][1] == 1
