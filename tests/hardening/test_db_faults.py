"""Database faults during a campaign: SQLite locked by another process for longer than its busy
timeout, and PostgreSQL restarting. The dialer keeps going, and no result is lost: every contact
ends with its result recorded, delivered and applied once."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from switchboard import app as sbapp
from switchboard.engine.operators import Operator
from switchboard.settings import Settings
from switchboard.store import NewContact
from switchboard.store.models import CallRecord, Contact, OutboxItem
from switchboard.telephony.sim.backend import SimBackend
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

ROOT = Path(__file__).resolve().parents[2]
N = 24


def settings_for(tmp_path: Path, url: str = "") -> Settings:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir(exist_ok=True)
    shutil.copy(ROOT / "scenarios" / "agrad_marketing.yaml", scenarios)
    return Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs", database_url=url,  # type: ignore[call-arg]
                    scenarios_dir=scenarios, outbound_numbers="02191000001,02191000002", company="dbf",
                    calling_hours_start="00:00", calling_hours_end="23:59", panel_timezone="+0000",
                    max_concurrent_calls=6, max_originations_per_second=20, metrics_enabled=False,
                    max_attempts=1, sim_audio=False)


def backend() -> SimBackend:
    return SimBackend(network=SimNetwork(origination_timeout=5.0), default_script=lambda number, _v: CallerScript(
        phone=number, answer=AnswerAfter(after_seconds=0.2), replies=[Reply(say="no thanks", delay=0.2)]))


async def run_campaign(settings: Settings, fault) -> list[Contact]:  # type: ignore[no-untyped-def]
    node = await sbapp.build_node(settings, backend=backend())
    node.engine.services.operators.set_roster(None, "outbound", [Operator("09121110001")])
    node.dialer.poll_interval = 0.3
    camp = await node.store.campaigns.get_or_create("dbf", company="dbf")
    await node.store.contacts.add_many([NewContact(phone=f"0912300{i:04d}", phone_e164=f"+98912300{i:04d}",
                                                   phone_national=f"912300{i:04d}", company="dbf",
                                                   campaign_id=camp.id) for i in range(N)])
    try:
        await node.deliverer.start()
        await node.dialer.start()
        runner = asyncio.create_task(node.dialer.run(until_idle=True))
        await fault(node)
        await asyncio.wait_for(runner, 120)
        deadline = time.monotonic() + 30
        while await node.store.outbox.pending_count() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        async with node.store.sessions() as s:
            contacts = list((await s.scalars(select(Contact))).all())
            calls = list((await s.scalars(select(CallRecord))).all())
            outbox = list((await s.scalars(select(OutboxItem))).all())
    finally:
        await node.close()
    assert len(calls) == N and all(c.result and c.ended_at for c in calls), [c.result for c in calls]
    assert len(outbox) == N and all(o.status == "delivered" for o in outbox)
    assert all(c.status == "done" and c.attempts == 1 and c.last_result for c in contacts)
    return contacts


async def test_sqlite_locked_longer_than_its_busy_timeout_loses_no_result(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path)
    db = settings.data_dir / "switchboard.db"

    async def lock(node: sbapp.Node) -> None:
        async with node.store.engine.connect() as conn:  # the store's only connection (SQLite)
            await conn.execute(text("PRAGMA busy_timeout=300"))
        while (await node.store.calls.list(limit=1)).total < 4:
            await asyncio.sleep(0.05)
        held = threading.Event()

        def hold() -> None:  # another process's writer keeps the file locked for 3 s
            other = sqlite3.connect(db, timeout=30)
            other.execute("BEGIN EXCLUSIVE")
            held.set()
            time.sleep(3)
            other.rollback()
            other.close()

        thread = threading.Thread(target=hold)
        thread.start()
        await asyncio.to_thread(held.wait)
        await asyncio.to_thread(thread.join)

    with caplog.at_level(logging.WARNING):
        await run_campaign(settings, lock)
    assert "database is locked" in caplog.text  # the lock really outlasted the busy timeout


def _pg_ctl() -> tuple[str, str] | None:
    state = os.environ.get("SWITCHBOARD_SERVICES_DIR", "/tmp/switchboard-test-services")
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not bins or not (Path(state) / "pg" / "PG_VERSION").exists() or os.geteuid() != 0:
        return None
    return str(bins[-1]), str(Path(state) / "pg")


@pytest.mark.postgres
async def test_postgresql_restart_mid_campaign_loses_no_result(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    base = os.environ.get("DATABASE_URL_TEST")
    ctl = _pg_ctl()
    if not base or ctl is None:
        pytest.skip("needs the PostgreSQL server scripts/services.sh started (DATABASE_URL_TEST, root)")
    import asyncpg

    name = f"switchboard_restart_{os.getpid()}"
    admin = base.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    pg_ctl, data = ctl

    async def restart(node: sbapp.Node) -> None:
        while (await node.store.calls.list(limit=1)).total < 4:
            await asyncio.sleep(0.05)
        opts = subprocess.run(["cat", f"{data}/postmaster.opts"], capture_output=True, text=True).stdout
        await asyncio.to_thread(subprocess.run, ["su", "postgres", "-c", f"{pg_ctl} -D {data} -m fast stop"],
                                check=True, capture_output=True)
        await asyncio.sleep(2)  # calls go on ending while the database is down
        options = opts.split(" ", 1)[1].strip() if " " in opts else ""
        port = base.rsplit(":", 1)[1].split("/", 1)[0]
        args = f"-p {port} -k {Path(data).parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        await asyncio.to_thread(subprocess.run, ["su", "postgres", "-c",
                                                 f"{pg_ctl} -D {data} -l {Path(data).parent}/pg.log -w "
                                                 f"-o '{args}' start"], check=True, capture_output=True)
        assert options or True

    try:
        with caplog.at_level(logging.WARNING):
            await run_campaign(settings_for(tmp_path, base.rsplit("/", 1)[0] + f"/{name}"), restart)
        assert "could not store" in caplog.text or "going on" in caplog.text
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
