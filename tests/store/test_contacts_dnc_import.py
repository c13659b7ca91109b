"""A number already on the do-not-call list is stored as `dnc` when it is imported, so it is never
offered and a campaign that waits for its contacts to finish does not wait on it."""

from __future__ import annotations

from switchboard.store import NewContact, Store


async def test_contacts_on_the_dnc_list_come_in_as_dnc(store: Store) -> None:
    await store.dnc.add("+989121110001", reason="asked", source="test")
    added = await store.contacts.add_many([
        NewContact(phone="09121110001", phone_e164="+989121110001", phone_national="09121110001", company="acme"),
        NewContact(phone="09121110002", phone_e164="+989121110002", phone_national="09121110002", company="acme"),
    ])
    assert added == 2
    assert await store.contacts.counts_by_status("acme") == {"dnc": 1, "pending": 1}
    leased = await store.contacts.lease("t", 10, company="acme")
    assert [c.phone_e164 for c in leased] == ["+989121110002"]
