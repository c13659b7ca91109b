"""After a crash: calls the dead process left half done are reported `failed:interrupted` by the
next one (never left without a result), and results a dead deliverer had claimed are delivered
within seconds (not after a 120 s claim). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from switchboard import clock
from switchboard.panel.client import DeliveryOutcome
from switchboard.panel.outbox import OutboxDeliverer
from switchboard.process import gone, node_id
from switchboard.settings import Settings
from switchboard.store import CallData, NewContact, Store
from tests.storekit import BACKENDS, PG_URL, db_url, reset_postgres, store  # noqa: F401


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs", company="acme",
                    scenarios_dir=Path(__file__).resolve().parents[2] / "scenarios", outbound_numbers="02191000001",
                    calling_hours_start="00:00", calling_hours_end="23:59", metrics_enabled=False)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_process_names_tell_dead_from_alive() -> None:
    host = socket.gethostname()
    assert gone(node_id()) is False
    assert gone(f"{host}-{dead_pid()}") is True
    assert gone(f"{host}-{dead_pid()}-1a2b3c4d") is True
    assert gone("another-host.example-1234") is None
    assert gone("garbage") is None


async def _half_done(store: Store, call_id: str, node: str | None, phone: str, contact_id: int,  # noqa: F811
                     age: timedelta = timedelta(seconds=30)) -> None:
    attributes = {"node": node} if node else None
    await store.calls.start(CallData(id=call_id, direction="outbound", phone=phone, phone_e164="+98" + phone[1:],
                                     company="acme", scenario="salehi_language", number_id=str(contact_id),
                                     line="02191000001", originated_at=clock.now() - age, attributes=attributes))


async def test_calls_cut_off_by_a_crash_are_reported_interrupted(store: Store, settings: Settings) -> None:  # noqa: F811
    from switchboard import app as sbapp

    phones = [f"0912000000{i}" for i in range(1, 6)]
    camp = await store.campaigns.get_or_create("c", company="acme")
    await store.contacts.add_many([NewContact(phone=p, phone_e164="+98" + p[1:], phone_national=p[1:], company="acme",
                                              campaign_id=camp.id) for p in phones])
    contacts = {c.phone: c.id for c in (await store.contacts.list(company="acme")).items}
    host = socket.gethostname()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        await _half_done(store, "dead-here", f"{host}-{dead_pid()}", phones[0], contacts[phones[0]])
        await _half_done(store, "alive-here", f"{host}-{sleeper.pid}", phones[1], contacts[phones[1]])
        await _half_done(store, "other-host-recent", "elsewhere-99", phones[2], contacts[phones[2]])
        await _half_done(store, "other-host-old", "elsewhere-99", phones[3], contacts[phones[3]],
                         age=timedelta(hours=5))
        await _half_done(store, "no-owner-old", None, phones[4], contacts[phones[4]], age=timedelta(hours=5))
        node = await sbapp.build_node(settings.model_copy(update={"database_url": str(store.engine.url.render_as_string(
            hide_password=False))}))
        try:
            await node.deliverer.start()
            await node.dialer.start()
            deadline = time.monotonic() + 15
            while await node.store.outbox.pending_count() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            rows = {c.id: c for c in [await node.store.calls.get(i) for i in (
                "dead-here", "alive-here", "other-host-recent", "other-host-old", "no-owner-old")] if c}
            assert rows["dead-here"].result == "failed:interrupted" and rows["dead-here"].ended_at is not None
            assert rows["other-host-old"].result == "failed:interrupted"
            assert rows["no-owner-old"].result == "failed:interrupted"
            assert rows["alive-here"].ended_at is None  # its process still runs: not ours to end
            assert rows["other-host-recent"].ended_at is None  # can't tell yet: wait until it is old
            by_phone = {c.phone: c for c in (await node.store.contacts.list(company="acme")).items}
            assert by_phone[phones[0]].last_result == "failed:interrupted" and by_phone[phones[0]].attempts == 1
            assert by_phone[phones[0]].status == "pending"  # failed:* is retried
            assert by_phone[phones[1]].attempts == 0
            assert await node.store.outbox.pending_count() == 0
        finally:
            await node.close()
    finally:
        sleeper.kill()
        sleeper.wait()


class SlowSink:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.delivered: list[str] = []

    async def deliver(self, kind: str, payload: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        await asyncio.sleep(self.seconds)
        self.delivered.append(idempotency_key)
        return DeliveryOutcome(True, 200)


async def _outbox_rows(store: Store, n: int, prefix: str = "k") -> list[str]:  # noqa: F811
    keys = [f"{prefix}{i}" for i in range(n)]
    for key in keys:
        await store.outbox.add(key, {"company": "acme"})
    return keys


async def test_a_dead_deliverers_claim_is_released_at_once(store: Store) -> None:  # noqa: F811
    keys = await _outbox_rows(store, 5)
    dead_owner = f"{socket.gethostname()}-{dead_pid()}-deadbeef"
    claimed = await store.outbox.claim_due(dead_owner, 5, claim_seconds=120)  # the old default
    assert len(claimed) == 5
    sink = SlowSink(0)
    deliverer = OutboxDeliverer(store, sink, poll_interval=0.2)
    started = time.monotonic()
    await deliverer.start()
    try:
        while len(sink.delivered) < 5 and time.monotonic() - started < 10:
            await asyncio.sleep(0.05)
    finally:
        await deliverer.stop(flush_timeout=0)
    assert sorted(sink.delivered) == keys
    assert time.monotonic() - started < 3, "released within seconds, not after the 120 s claim"


async def test_a_claim_of_another_host_expires_within_seconds_and_a_live_one_is_renewed(store: Store) -> None:  # noqa: F811
    keys = await _outbox_rows(store, 3)
    assert OutboxDeliverer(store, SlowSink(0)).claim_seconds <= 15
    # A deliverer elsewhere died holding a (short) claim: it lapses, another deliverer takes over.
    claimed = await store.outbox.claim_due("elsewhere-1-abcdef12", 3, claim_seconds=1.5)
    assert len(claimed) == 3
    sink = SlowSink(0)
    deliverer = OutboxDeliverer(store, sink, poll_interval=0.2)
    await deliverer.start()
    started = time.monotonic()
    while len(sink.delivered) < 3 and time.monotonic() - started < 10:
        await asyncio.sleep(0.05)
    await deliverer.stop(flush_timeout=0)
    assert sorted(sink.delivered) == keys and time.monotonic() - started < 4

    # A live deliverer working slowly keeps its claim (heartbeat): a second one never takes its rows.
    keys = await _outbox_rows(store, 3, "slow")
    slow, fast = SlowSink(1.2), SlowSink(0)
    a = OutboxDeliverer(store, slow, poll_interval=0.1, claim_seconds=1.0, owner="a-1-aaaaaaaa")
    b = OutboxDeliverer(store, fast, poll_interval=0.1, claim_seconds=1.0, owner="b-2-bbbbbbbb")
    await a.start()
    await asyncio.sleep(0.3)  # a claims all three and delivers them one by one (3.6 s > claim)
    await b.start()
    deadline = time.monotonic() + 15
    while len(slow.delivered) + len(fast.delivered) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await a.stop(flush_timeout=0)
    await b.stop(flush_timeout=0)
    assert sorted(slow.delivered) == sorted(keys) and fast.delivered == []
