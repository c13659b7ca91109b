"""External panel down, results delivered later exactly once.

The panel is a second Switchboard process (`tests/e2e/panel_app.py`: the built-in panel app over
its own SQLite store, served by uvicorn on 127.0.0.1). The dialer node is built by `app.build_node`
with PANEL_BASE_URL pointing at it, so it pulls batches with `PanelClient` and delivers results
through the outbox's `PanelSink`. Mid-campaign the panel first loses acknowledgements (applies a
report, answers 503), then answers 503 to everything, then recovers."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from switchboard import app as sbapp
from switchboard.store import open_store
from switchboard.telephony.sim.backend import SimBackend
from switchboard.telephony.sim.call import SimTimings
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import AnswerAfter, CallerScript

from tests.e2e.harness import ROOT, all_contacts, all_outbox, all_receipts, e2e_settings, iran_phones, seed

TOKEN = "e2e-panel-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _receipts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM panel_receipts").fetchone()[0])


def test_panel_outage_results_delivered_later_exactly_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    panel_dir = tmp_path / "panel"
    panel_settings = e2e_settings(panel_dir.mkdir() or panel_dir, "e2e_quick", builtin_panel_token=TOKEN)
    panel_db = panel_dir / "panel.db"
    panel_url = f"sqlite+aiosqlite:///{panel_db}"
    phones = iran_phones(24)

    async def seed_panel() -> None:
        store = await open_store(panel_settings, url=panel_url)
        try:
            await seed(store, panel_settings, phones)
        finally:
            await store.close()

    asyncio.run(seed_panel())
    flag, log = tmp_path / "panel.flag", tmp_path / "panel-requests.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PANEL_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=panel_url, COMPANY=panel_settings.company,
               BUILTIN_PANEL_TOKEN=TOKEN, PANEL_TIMEZONE="+0000", DATA_DIR=str(panel_dir),
               E2E_PANEL_FLAG=str(flag), E2E_PANEL_LOG=str(log))
    panel = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.e2e.panel_app:app", "--host", "127.0.0.1",
                              "--port", str(port), "--lifespan", "on", "--log-level", "warning"],
                             cwd=ROOT, env=env, stderr=(tmp_path / "panel.log").open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and panel.poll() is None, "panel process did not start"
            time.sleep(0.1)
        outbox = asyncio.run(_campaign(tmp_path, base, flag, panel_db))
        contacts, receipts = asyncio.run(_panel_state(panel_settings, panel_url))
    finally:
        panel.terminate()
        panel.wait(timeout=10)

    requests = [line.split() for line in log.read_text().splitlines()]
    lost = {key for mode, key in requests if mode == "lost-ack"}
    down = {key for mode, key in requests if mode == "down"}
    assert lost and down, requests  # the outage really hit report-result deliveries
    # Every result reached the panel once: one receipt per key, each contact's attempt applied once
    # (a lost acknowledgement was retried and recognised, not applied twice).
    assert len(outbox) == len(phones) and all(o.status == "delivered" for o in outbox)
    assert Counter(r.idempotency_key for r in receipts) == Counter(o.idempotency_key for o in outbox)
    assert all(c.status == "done" and c.attempts == 1 and c.last_result == "not_interested" for c in contacts)
    retried = {o.idempotency_key for o in outbox if o.attempts > 1}
    assert lost <= retried and down <= retried


async def _campaign(tmp_path: Path, base: str, flag: Path, panel_db: Path):  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path / "dialer" if (tmp_path / "dialer").mkdir() is None else tmp_path, "e2e_quick",
                            panel_base_url=base, panel_api_token=TOKEN, panel_timeout=5.0,
                            outbound_numbers="02191000001,02191000002", max_concurrent_calls=3,
                            max_originations_per_second=20.0, batch_size=8)
    network = SimNetwork(timings=SimTimings(prompt_seconds=0.4))
    backend = SimBackend(network=network, default_script=lambda number, variables: CallerScript(
        phone=number, answer=AnswerAfter(after_seconds=0.1)))
    node = await sbapp.build_node(settings, backend=backend)
    node.dialer.poll_interval = 0.3
    try:
        await node.deliverer.start()
        await node.dialer.start()
        run = asyncio.create_task(node.dialer.run(until_idle=True))
        while await asyncio.to_thread(_receipts, panel_db) < 4:
            assert not run.done()
            await asyncio.sleep(0.05)
        flag.write_text("lost-ack")
        await asyncio.sleep(1.5)
        flag.write_text("down")
        await asyncio.sleep(4.0)
        flag.unlink()
        stats = await asyncio.wait_for(run, 60)
        assert stats.originated == 24
        # Delivered later by the background deliverer (its backoff), not by the final flush.
        deadline = time.monotonic() + 40
        while await node.store.outbox.pending_count() > 0:
            assert time.monotonic() < deadline, "outbox never drained after the panel recovered"
            await asyncio.sleep(0.2)
        return await all_outbox(node.store)
    finally:
        await node.close()


async def _panel_state(settings, url):  # type: ignore[no-untyped-def]
    store = await open_store(settings, url=url)
    try:
        return await all_contacts(store), await all_receipts(store)
    finally:
        await store.close()
