"""Results outbox: committed first, delivered later, exactly once in effect."""

import asyncio
import socket
from datetime import timedelta

import uvicorn
from panel_fakes import FakePanel

from switchboard import clock
from switchboard.panel.client import PanelClient
from switchboard.panel.contract import ReportResultRequest
from switchboard.panel.local import LocalPanel
from switchboard.panel.outbox import Backoff, LocalSink, OutboxDeliverer, PanelSink, ResultsOutbox, make_sink
from switchboard.store import CallData, EventData, NewContact, Store, open_store

FAST = Backoff(base=0.05, factor=2.0, max=0.3, jitter=0.0)


def call(i: int, **kw) -> CallData:  # type: ignore[no-untyped-def]
    t = clock.now()
    fields = dict(
        id=f"call-{i}",
        direction="outbound",
        phone=f"0912000{i:04d}",
        company="acme",
        originated_at=t,
        ended_at=t + timedelta(seconds=20),
        result="not_interested",
    )
    fields.update(kw)
    return CallData(**fields)


def result(i: int, status: str = "not_interested", **kw) -> ReportResultRequest:  # type: ignore[no-untyped-def]
    kw.setdefault("phone_number", f"0912000{i:04d}")
    return ReportResultRequest(company="acme", number_id=i, status=status, attempted_at=clock.now(), **kw)


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_panel_down_then_back_delivers_each_result_once(store, settings, serve_app):
    fake = FakePanel(fail_next=7)  # a maintenance window answering 503
    async with serve_app(fake.app()) as url, PanelClient(url, "t", retries=0) as client:
        deliverer = OutboxDeliverer(store, PanelSink(client), backoff=FAST, poll_interval=0.1)
        outbox = ResultsOutbox(store, settings, deliverer)
        keys = [await outbox.submit(call(i), result(i)) for i in range(5)]
        await deliverer.start()
        await wait_for(lambda: _pending_is(store, 0))
        await deliverer.stop(flush_timeout=0)
    assert 503 in fake.status_codes
    assert sorted(fake.applied) == sorted(keys) and len(fake.applied) == 5
    for key in keys:
        item = await store.outbox.get(key)
        assert item.status == "delivered" and item.delivered_at is not None
    assert fake.bodies[keys[0]]["status"] == "not_interested"
    assert fake.bodies[keys[0]]["phone_number"] == "09120000000"


async def test_panel_unreachable_for_a_while_loses_nothing(store, settings):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with PanelClient(url, "t", retries=0, timeout=1.0) as client:
        deliverer = OutboxDeliverer(store, PanelSink(client), backoff=FAST, poll_interval=0.1)
        outbox = ResultsOutbox(store, settings, deliverer)
        keys = [await outbox.submit(call(i), result(i)) for i in range(3)]
        await deliverer.start()
        await asyncio.sleep(0.8)  # connection refused, again and again
        assert deliverer.failures >= 3 and await store.outbox.pending_count() == 3
        item = await store.outbox.get(keys[0])
        assert item.attempts >= 2 and "ConnectError" in item.last_error
        fake = FakePanel()
        server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        try:
            await wait_for(lambda: _pending_is(store, 0))
        finally:
            await deliverer.stop(flush_timeout=0)
            server.should_exit = True
            await task
    assert sorted(fake.applied) == sorted(keys)
    assert all(n == 1 for n in fake.requests.values())


async def _pending_is(store: Store, n: int) -> bool:
    return await store.outbox.pending_count() == n


async def test_restart_mid_delivery_no_loss_no_duplicate(store, settings, db_url, serve_app):
    """The panel applies a result but the process dies before hearing back: the restarted
    deliverer sends it again with the same key, the panel answers 409, nothing is applied twice."""
    fake = FakePanel(hold_first_ack=30.0)
    async with serve_app(fake.app()) as url:
        client = PanelClient(url, "t", retries=0, timeout=60)
        deliverer = OutboxDeliverer(
            store, PanelSink(client), backoff=FAST, poll_interval=0.1, claim_seconds=0.5
        )
        outbox = ResultsOutbox(store, settings, deliverer)
        keys = [await outbox.submit(call(i), result(i)) for i in range(3)]
        await deliverer.start()
        await asyncio.wait_for(fake.applied_event.wait(), 10)
        # "Crash": the task dies mid-request; nothing more is written by this process.
        await deliverer.stop(flush_timeout=0)
        await client.aclose()
        assert await store.outbox.pending_count() == 3

        restarted = await open_store(settings, url=db_url)
        try:
            async with PanelClient(url, "t", retries=0) as client2:
                d2 = OutboxDeliverer(restarted, PanelSink(client2), backoff=FAST, poll_interval=0.1)
                await d2.start()
                await wait_for(lambda: _pending_is(restarted, 0))
                await d2.stop(flush_timeout=0)
        finally:
            await restarted.close()
            fake.release.set()
    assert sorted(fake.applied) == sorted(keys)  # each applied exactly once
    assert fake.requests[fake.applied[0]] == 2 and 409 in fake.status_codes  # the replay was recognised


async def test_two_deliverers_share_one_outbox(store, settings, db_url, serve_app):
    fake = FakePanel()
    other = await open_store(settings, url=db_url)
    try:
        async with serve_app(fake.app()) as url, PanelClient(url, "t", retries=0) as client:
            outbox = ResultsOutbox(store, settings)
            keys = [await outbox.submit(call(i), result(i)) for i in range(40)]
            d1 = OutboxDeliverer(store, PanelSink(client), batch_size=3, poll_interval=0.05)
            d2 = OutboxDeliverer(other, PanelSink(client), batch_size=3, poll_interval=0.05)
            await asyncio.gather(d1.start(), d2.start())
            await wait_for(lambda: _pending_is(store, 0))
            await asyncio.gather(d1.stop(flush_timeout=0), d2.stop(flush_timeout=0))
    finally:
        await other.close()
    assert sorted(fake.applied) == sorted(keys)
    assert set(fake.requests.values()) == {1}  # no item was sent twice
    assert d1.delivered > 0 and d2.delivered > 0


async def test_local_sink_applies_results_to_contacts_and_writes_transcript_logs(store, settings):
    c1 = await store.contacts.add(NewContact("09121234567", "+989121234567", "9121234567", company="acme"))
    c2 = await store.contacts.add(NewContact("09121234568", "+989121234568", "9121234568", company="acme"))
    local = LocalPanel(store, settings)
    await store.contacts.lease("engine", 5, company="acme")
    sink = make_sink(settings, store, local=local)
    assert isinstance(sink, LocalSink)
    deliverer = OutboxDeliverer(store, sink, backoff=FAST)
    outbox = ResultsOutbox(store, settings, deliverer)
    await outbox.submit(
        call(
            1,
            phone="09121234567",
            scenario="sales",
            intent="yes",
            result="connected_to_operator",
            transcripts=[{"role": "agent", "text": "hi"}, {"role": "caller", "text": "بله   لطفا\nوصل کنید"}],
        ),
        result(c1.id, "connected_to_operator", scenario_id="sales", phone_number="09121234567"),
        [EventData(clock.now(), "transferred")],
    )
    await outbox.submit(
        call(2, phone="09121234568", result="not_interested"),
        result(c2.id, "not_interested", user_message="نه، تماس نگیرید"),
    )
    await outbox.submit(call(3, result="missed"), result(999, "missed"))
    # Submitting the same call again is a no-op (same key derived from the call id).
    await outbox.submit(
        call(2, result="not_interested"), result(c2.id, "not_interested", user_message="again")
    )
    assert await deliverer.flush(timeout=5)
    assert (await store.contacts.get(c1.id)).status == "done"
    assert (await store.contacts.get(c2.id)).last_result == "not_interested"
    assert (await store.contacts.get(c2.id)).attempts == 1
    positive = (settings.logs_dir / "positive_stt.log").read_text(encoding="utf-8").splitlines()
    negative = (settings.logs_dir / "negative_stt.log").read_text(encoding="utf-8").splitlines()
    assert len(positive) == 1 and positive[0].endswith(
        "\t09121234567\tsales\tconnected_to_operator\tبله لطفا وصل کنید"
    )
    assert len(negative) == 1 and negative[0].endswith("نه، تماس نگیرید")


async def test_built_in_panel_retry_policy_via_outbox(store, settings):
    c = await store.contacts.add(NewContact("09121234567", "+989121234567", "9121234567", company="acme"))
    await store.contacts.lease("engine", 1, company="acme")
    deliverer = OutboxDeliverer(store, LocalSink(LocalPanel(store, settings)))
    outbox = ResultsOutbox(store, settings, deliverer)
    for i in range(settings.max_attempts):
        await outbox.submit(call(i, result="missed"), result(c.id, "missed", phone_number="09121234567"))
        assert await deliverer.flush(timeout=5)
        row = await store.contacts.get(c.id)
        assert row.attempts == i + 1
        if i + 1 < settings.max_attempts:
            assert row.status == "pending"
            assert row.next_attempt_at >= clock.now() + timedelta(seconds=settings.retry_delay_seconds - 60)
    assert row.status == "done" and row.last_result == "missed"  # attempts exhausted


async def test_stop_flushes_and_undeliverable_waits_for_next_start(store, settings, serve_app):
    fake = FakePanel(fail_next=1000)
    async with serve_app(fake.app()) as url, PanelClient(url, "t", retries=0) as client:
        deliverer = OutboxDeliverer(store, PanelSink(client), backoff=Backoff(base=60, jitter=0))
        outbox = ResultsOutbox(store, settings, deliverer)
        await outbox.submit(call(1), result(1))
        assert await deliverer.flush(timeout=0.5) is False
        fake.fail_next = 0
        # Backoff says "in 60 s", but a flush on stop ignores backoff.
        assert await deliverer.stop(flush_timeout=2) is True
    assert len(fake.applied) == 1


DELIVERER_PROCESS = """
import asyncio, sys
from switchboard.panel.client import PanelClient
from switchboard.panel.outbox import OutboxDeliverer, PanelSink
from switchboard.store import Store
from switchboard.store.db import create_engine

async def main(db_url, panel_url):
    store = Store.from_engine(create_engine(db_url))
    client = PanelClient(panel_url, "t", retries=0, timeout=60)
    deliverer = OutboxDeliverer(store, PanelSink(client), poll_interval=0.1, claim_seconds=1)
    await deliverer.start()
    print("started", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_process_killed_mid_delivery_no_loss_no_duplicate(store, settings, db_url, serve_app):
    import signal
    import subprocess
    import sys

    fake = FakePanel(hold_first_ack=60.0)
    outbox = ResultsOutbox(store, settings)
    keys = [await outbox.submit(call(i), result(i)) for i in range(4)]
    async with serve_app(fake.app()) as url:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DELIVERER_PROCESS,
            db_url,
            url,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            await asyncio.wait_for(fake.applied_event.wait(), 30)
        finally:
            proc.send_signal(signal.SIGKILL)  # dies with the panel's acknowledgement still in flight
            await proc.wait()
        assert len(fake.applied) == 1 and await store.outbox.pending_count() == 4
        async with PanelClient(url, "t", retries=0) as client:
            d = OutboxDeliverer(store, PanelSink(client), backoff=FAST, poll_interval=0.1)
            await d.start()
            await wait_for(lambda: _pending_is(store, 0), timeout=15)
            await d.stop(flush_timeout=0)
        fake.release.set()
    assert sorted(fake.applied) == sorted(keys)
    assert fake.requests[fake.applied[0]] == 2 and 409 in fake.status_codes
