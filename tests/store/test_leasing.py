import asyncio
import json
import subprocess
import sys
import textwrap
from datetime import timedelta

from switchboard import clock
from switchboard.store import NewContact, Store
from switchboard.store.db import create_engine


def contact(i: int, **kw) -> NewContact:  # type: ignore[no-untyped-def]
    phone = f"+98912{i:07d}"
    return NewContact(phone=phone, phone_e164=phone, phone_national=phone[3:], company="acme", **kw)


async def test_lease_takes_only_due_contacts(store):
    now = clock.now()
    await store.contacts.add_many(
        [
            contact(1),
            contact(2, next_attempt_at=now - timedelta(minutes=1)),
            contact(3, next_attempt_at=now + timedelta(hours=1)),
            contact(4),
        ]
    )
    paused = await store.campaigns.get_or_create("paused", company="acme", active=False)
    await store.contacts.add(contact(5, campaign_id=paused.id))
    await store.contacts.add(NewContact("+989120000009", "+989120000009", "9120000009", company="other"))
    await store.dnc.add(contact(4).phone_e164)
    now = clock.now()  # contacts without a next attempt time are due from when they were added
    got = await store.contacts.lease("p1", 10, company="acme", now=now, lease_seconds=36000)
    assert sorted(c.phone_e164 for c in got) == [contact(1).phone_e164, contact(2).phone_e164]
    assert all(c.status == "leased" and c.lease_owner == "p1" for c in got)
    assert await store.contacts.lease("p2", 10, company="acme", now=now) == []
    # Later, the future contact is due too.
    later = await store.contacts.lease("p2", 10, company="acme", now=now + timedelta(hours=2))
    assert [c.phone_e164 for c in later] == [contact(3).phone_e164]


async def test_expired_lease_is_taken_again_and_release_works(store):
    a = await store.contacts.add(contact(1))
    now = clock.now()
    [_] = await store.contacts.lease("crashed", 5, company="acme", lease_seconds=60, now=now)
    assert await store.contacts.lease("other", 5, company="acme", now=now + timedelta(seconds=30)) == []
    [again] = await store.contacts.lease("other", 5, company="acme", now=now + timedelta(seconds=61))
    assert again.id == a.id and again.lease_owner == "other"
    assert await store.contacts.renew_lease([a.id], "other", 600, now=now + timedelta(seconds=61)) == 1
    assert await store.contacts.renew_lease([a.id], "crashed", 600) == 0
    assert not await store.contacts.release(a.id, owner="crashed")
    assert await store.contacts.release(a.id, owner="other", next_attempt_at=now + timedelta(hours=1))
    row = await store.contacts.get(a.id)
    assert (row.status, row.lease_owner, row.attempts) == ("pending", None, 0)
    assert await store.contacts.lease("x", 5, company="acme", now=now + timedelta(minutes=5)) == []


async def test_concurrent_leasers_on_separate_pools_never_share(store, db_url):
    await store.contacts.add_many([contact(i) for i in range(300)])
    other = Store.from_engine(create_engine(db_url))
    try:

        async def drain(st: Store, owner: str) -> list[int]:
            taken: list[int] = []
            while True:
                got = await st.contacts.lease(owner, 7, company="acme")
                if not got:
                    return taken
                taken += [c.id for c in got]
                await asyncio.sleep(0)

        a, b, c = await asyncio.gather(drain(store, "a"), drain(other, "b"), drain(other, "c"))
    finally:
        await other.close()
    everything = a + b + c
    assert len(everything) == 300 and len(set(everything)) == 300


LEASER = textwrap.dedent(
    """
    import asyncio, json, sys
    from switchboard.store import Store
    from switchboard.store.db import create_engine

    async def main(url, owner):
        st = Store.from_engine(create_engine(url))
        await st.contacts.lease(owner, 0, company="acme")  # imports and pool warm before the barrier
        async with st.engine.connect():
            pass
        print("ready", flush=True)
        sys.stdin.readline()  # the start barrier: every process begins leasing at the same moment
        taken = []
        while True:
            got = await st.contacts.lease(owner, 5, company="acme")
            if not got:
                break
            taken += [c.id for c in got]
        await st.close()
        print(json.dumps(taken))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_two_processes_never_lease_the_same_contact(store, db_url):
    """Separate OS processes (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: atomic UPDATE)."""
    await store.contacts.add_many([contact(i) for i in range(400)])

    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LEASER,
            db_url,
            f"proc-{n}",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in (1, 2, 3)
    ]
    for proc in procs:
        assert (await proc.stdout.readline()).strip() == b"ready", (await proc.stderr.read()).decode()
    for proc in procs:
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()

    async def result(proc) -> list[int]:  # type: ignore[no-untyped-def]
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return json.loads(out)

    results = await asyncio.gather(*(result(p) for p in procs))
    assert sum(1 for r in results if r) >= 2, "the processes did not overlap; the test proves nothing"
    everything = [i for r in results for i in r]
    assert len(everything) == 400, [len(r) for r in results]
    assert len(set(everything)) == 400
    owners = {c.lease_owner for c in (await store.contacts.list(company="acme", limit=500)).items}
    assert owners <= {"proc-1", "proc-2", "proc-3"}
