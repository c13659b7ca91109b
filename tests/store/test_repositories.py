from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from switchboard import clock
from switchboard.store import (
    AttemptOutcome,
    CallData,
    EventData,
    LineSpec,
    NewContact,
    OperatorSpec,
    OutboxEntry,
)


def contact(phone="+989121234567", **kw) -> NewContact:  # type: ignore[no-untyped-def]
    return NewContact(phone=phone, phone_e164=phone, phone_national=phone[3:], company="acme", **kw)


async def test_contacts_add_list_and_attempts(store):
    c = await store.contacts.add(contact(name="Ali", attributes={"city": "تهران"}, timezone="Asia/Tehran"))
    await store.contacts.add_many([contact(f"+98912000000{i}") for i in range(5)])
    page = await store.contacts.list(company="acme", limit=3)
    assert page.total == 6 and len(page.items) == 3
    got = await store.contacts.get(c.id)
    assert got.attributes == {"city": "تهران"} and got.created_at.tzinfo is not None
    when = clock.now()
    retry_at = when + timedelta(minutes=30)
    updated = await store.contacts.record_attempt(
        c.id, "missed", at=when, final=False, next_attempt_at=retry_at
    )
    assert updated.attempts == 1 and updated.status == "pending"
    again = await store.contacts.get(c.id)
    assert again.next_attempt_at == retry_at and again.last_result == "missed"
    await store.contacts.record_attempt(c.id, "not_interested", at=when, final=True)
    again = await store.contacts.get(c.id)
    assert (again.attempts, again.status, again.next_attempt_at) == (2, "done", None)
    assert await store.contacts.counts_by_status("acme") == {"pending": 5, "done": 1}
    assert await store.contacts.existing_phones(
        ["+989121234567", "+989999999999"], company="acme", campaign_id=None
    ) == {"+989121234567"}


async def test_datetimes_round_trip_as_aware_utc(store):
    tehran = timezone(timedelta(hours=3, minutes=30))
    local = datetime(2026, 3, 20, 9, 0, tzinfo=tehran)
    c = await store.contacts.add(contact(next_attempt_at=local))
    got = await store.contacts.get(c.id)
    assert got.next_attempt_at == local and got.next_attempt_at.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive datetime"):
        await store.contacts.add(contact("+989121111111", next_attempt_at=datetime(2026, 1, 1)))


async def test_record_finished_call_is_atomic_and_idempotent(store):
    c = await store.contacts.add(contact())
    t0 = clock.now()
    await store.calls.start(
        CallData(
            id="call-1",
            direction="outbound",
            phone="09121234567",
            phone_e164="+989121234567",
            company="acme",
            contact_id=c.id,
            originated_at=t0,
        )
    )
    assert [x.id for x in await store.calls.unfinished(company="acme")] == ["call-1"]
    done = CallData(
        id="call-1",
        direction="outbound",
        phone="09121234567",
        company="acme",
        scenario="sales",
        answered_at=t0 + timedelta(seconds=5),
        ended_at=t0 + timedelta(seconds=40),
        result="not_interested",
        reason="said no",
        intent="no",
        transcripts=[{"role": "caller", "text": "نه ممنون"}],
        recording_path="recordings/call-1.wav",
    )
    events = [
        EventData(t0, "originated"),
        EventData(t0 + timedelta(seconds=5), "answered", {"line": "1"}),
        EventData(t0 + timedelta(seconds=40), "ended", {"result": "not_interested"}),
    ]
    entry = OutboxEntry("call:call-1", {"status": "not_interested"})
    assert await store.calls.record(done, events, outbox=entry, attempt=AttemptOutcome(c.id, final=True))
    # A retried record (same key) changes nothing: no duplicate events, outbox rows or attempts.
    assert not await store.calls.record(done, events, outbox=entry, attempt=AttemptOutcome(c.id, final=True))
    row = await store.calls.get("call-1")
    assert row.originated_at == t0 and row.result == "not_interested" and row.phone_e164 == "+989121234567"
    assert row.transcripts == [{"role": "caller", "text": "نه ممنون"}]
    assert [e.kind for e in await store.calls.events("call-1")] == ["originated", "answered", "ended"]
    assert (await store.outbox.list()).total == 1
    assert (await store.outbox.get("call:call-1")).call_id == "call-1"
    got = await store.contacts.get(c.id)
    assert (got.attempts, got.status, got.last_result) == (1, "done", "not_interested")
    assert await store.calls.unfinished() == []
    assert await store.calls.outbound_attempts_since("+989121234567", t0 - timedelta(hours=1)) == 1
    assert (await store.calls.last_outbound("+989121234567")).id == "call-1"
    assert [r.id async for r in store.calls.iter_finished(company="acme", chunk=1)] == ["call-1"]


async def test_failed_transaction_leaves_nothing(store):
    bad = CallData(id="atomic-1", direction="outbound", phone="1", company="acme")
    entry = OutboxEntry("k-atomic", {"status": "missed"})
    event = EventData(datetime(2026, 1, 1), "naive")  # naive datetime: rejected
    with pytest.raises(StatementError, match="naive datetime"):
        await store.calls.record(bad, [event], outbox=entry)
    assert await store.outbox.get("k-atomic") is None
    assert (await store.calls.list()).total == 0


async def test_dnc_list(store):
    c = await store.contacts.add(contact())
    assert await store.dnc.add("+989121234567", reason="asked", source="sales/opt_out")
    assert not await store.dnc.add("+989121234567")
    assert await store.dnc.contains("+989121234567")
    assert await store.dnc.contains_many(["+989121234567", "+989120000000"]) == {"+989121234567"}
    assert (await store.contacts.get(c.id)).status == "dnc"
    assert (await store.dnc.list()).total == 1
    with pytest.raises(ValueError):
        await store.dnc.add("09121234567")
    assert await store.dnc.remove("+989121234567")
    assert not await store.dnc.contains("+989121234567")


async def test_catalog_and_state(store):
    camp = await store.campaigns.get_or_create("spring", company="acme", calling_hours_start="09:00")
    assert (await store.campaigns.get_or_create("spring", company="acme")).id == camp.id
    await store.campaigns.update(camp.id, active=False)
    assert not (await store.campaigns.get(camp.id)).active
    line = await store.lines.upsert(LineSpec("02191001234", "main", max_concurrent=3), company="acme")
    await store.lines.upsert(LineSpec("02191001234", "renamed"), company="acme")
    lines = await store.lines.list(company="acme")
    assert [(x.id, x.display_name, x.max_concurrent) for x in lines] == [(line.id, "renamed", 3)]
    await store.operators.upsert(
        OperatorSpec("outbound", "09120000001", "Sara", scenario="sales"), company="acme"
    )
    await store.operators.upsert(OperatorSpec("outbound", "09120000002"), company="acme")
    await store.operators.upsert(OperatorSpec("inbound", "09120000003"), company="acme")
    sales = await store.operators.list(company="acme", direction="outbound", scenario="sales")
    assert {o.phone_number for o in sales} == {"09120000001", "09120000002"}
    assert {o.phone_number for o in await store.operators.list(direction="outbound", scenario="support")} == {
        "09120000002"
    }
    with pytest.raises(ValueError):
        await store.operators.upsert(OperatorSpec("sideways", "1"))
    assert await store.scenarios.register([("sales", "Sales"), ("support", None)], company="acme") == 2
    assert await store.scenarios.register([("sales", "Sales v2")], company="acme") == 0
    await store.scenarios.set_active("support", False, company="acme")
    assert [s.name for s in await store.scenarios.list(company="acme", active_only=True)] == ["sales"]
    await store.kv.set("dialer.paused", {"why": "stt balance"})
    await store.kv.set("dialer.paused", True)
    assert await store.kv.get("dialer.paused") is True
    assert await store.kv.get("missing", 5) == 5
    await store.alerts.add("paused", "STT balance exhausted", company="acme")
    assert [a.kind for a in await store.alerts.list(company="acme")] == ["paused"]
