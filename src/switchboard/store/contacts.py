"""Contacts: who to call, how often they were tried, and who holds them right now (leases)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, text, update

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.models import Batch, Campaign, Contact, DoNotCall

PENDING, LEASED, DONE, DNC = "pending", "leased", "done", "dnc"


@dataclass(slots=True)
class NewContact:
    phone: str
    phone_e164: str
    phone_national: str
    name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    company: str = "default"
    campaign_id: int | None = None
    external_id: str | None = None
    next_attempt_at: datetime | None = None


class ContactsRepo(Repository):
    async def add(self, contact: NewContact) -> Contact:
        async with self.sessions.begin() as s:
            blocked = await _on_dnc(s, [contact.phone_e164])
            row = Contact(**_fields(contact, blocked))
            s.add(row)
        return row

    async def add_many(self, contacts: Sequence[NewContact]) -> int:
        """Numbers already on the do-not-call list come in as `dnc`, never `pending`."""
        if not contacts:
            return 0
        async with self.sessions.begin() as s:
            blocked = await _on_dnc(s, [c.phone_e164 for c in contacts])
            s.add_all([Contact(**_fields(c, blocked)) for c in contacts])
        if self.is_postgres and len(contacts) >= 1000:
            # Fresh statistics right after a bulk import: without them PostgreSQL may plan the next
            # lease as a scan of every contact until autovacuum gets round to it.
            async with self.engine.connect() as conn:
                await conn.execute(text("ANALYZE contacts"))
                await conn.commit()
        return len(contacts)

    async def get(self, contact_id: int) -> Contact | None:
        async with self.sessions() as s:
            return await s.get(Contact, contact_id)

    async def find_by_phone(self, phone_e164: str, company: str | None = None) -> list[Contact]:
        stmt = select(Contact).where(Contact.phone_e164 == phone_e164).order_by(Contact.id)
        if company is not None:
            stmt = stmt.where(Contact.company == company)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())

    async def existing_phones(
        self, phones: Iterable[str], *, company: str, campaign_id: int | None
    ) -> set[str]:
        """Which of these E.164 numbers are already contacts of this company/campaign (import dedup)."""
        wanted = list(set(phones))
        found: set[str] = set()
        camp = Contact.campaign_id.is_(None) if campaign_id is None else Contact.campaign_id == campaign_id
        async with self.sessions() as s:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                stmt = select(Contact.phone_e164).where(
                    Contact.company == company, camp, Contact.phone_e164.in_(chunk)
                )
                found.update((await s.scalars(stmt)).all())
        return found

    async def list(
        self,
        *,
        company: str | None = None,
        status: str | None = None,
        campaign_id: int | None = None,
        phone_e164: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        conds = []
        if company is not None:
            conds.append(Contact.company == company)
        if status is not None:
            conds.append(Contact.status == status)
        if campaign_id is not None:
            conds.append(Contact.campaign_id == campaign_id)
        if phone_e164 is not None:
            conds.append(Contact.phone_e164 == phone_e164)
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Contact).where(*conds))
            rows = await s.scalars(
                select(Contact).where(*conds).order_by(Contact.id).offset(offset).limit(limit)
            )
            return Page(list(rows.all()), int(total or 0), offset, limit)

    async def next_due_at(self, company: str) -> datetime | None:
        """When the earliest pending contact becomes due (None: nothing pending), so a dialer with
        nothing to do sleeps until then instead of polling."""
        stmt = select(func.min(Contact.next_attempt_at)).where(Contact.company == company,
                                                              Contact.status == PENDING)
        async with self.sessions() as s:
            return await s.scalar(stmt)

    async def counts_by_status(self, company: str | None = None, *, campaign_id: int | None = None) -> dict[str, int]:
        stmt = select(Contact.status, func.count()).group_by(Contact.status)
        if company is not None:
            stmt = stmt.where(Contact.company == company)
        if campaign_id is not None:
            stmt = stmt.where(Contact.campaign_id == campaign_id)
        async with self.sessions() as s:
            return {status: int(n) for status, n in (await s.execute(stmt)).all()}

    def _due(self, company: str, now: datetime, campaign_id: int | None):  # type: ignore[no-untyped-def]
        # Shaped for the (company, status, next_attempt_at) index: a range scan in due order, so a
        # lease costs O(limit), not O(contacts).
        conds = [
            Contact.company == company,
            Contact.status == PENDING,
            Contact.next_attempt_at <= now,
            ~exists().where(DoNotCall.phone_e164 == Contact.phone_e164),
            or_(
                Contact.campaign_id.is_(None),
                Contact.campaign_id.in_(select(Campaign.id).where(Campaign.active)),
            ),
        ]
        if campaign_id is not None:
            conds.append(Contact.campaign_id == campaign_id)
        return and_(*conds)

    async def _reclaim_expired(self, s, company: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
        """Leases whose holder died (lease time passed) go back to pending, due at once."""
        expired = select(Contact.id).where(
            Contact.company == company, Contact.status == LEASED, Contact.leased_until < now
        )
        if self.is_postgres:  # never wait on (or deadlock with) another leaser's rows
            ids = list((await s.scalars(expired.with_for_update(skip_locked=True))).all())
            if not ids:
                return
            target = Contact.id.in_(ids)
        else:
            target = Contact.id.in_(expired.scalar_subquery())
        await s.execute(
            update(Contact)
            .where(target)
            .values(status=PENDING, lease_owner=None, leased_until=None, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )

    async def _lease_in(  # type: ignore[no-untyped-def]
        self,
        s,
        owner: str,
        limit: int,
        company: str,
        lease_seconds: float,
        campaign_id: int | None,
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> list[Contact]:
        await self._reclaim_expired(s, company, now)
        values: dict[str, Any] = dict(
            status=LEASED,
            lease_owner=owner,
            leased_until=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        values.update(extra or {})
        pick = (
            select(Contact.id)
            .where(self._due(company, now, campaign_id))
            .order_by(Contact.next_attempt_at, Contact.id)
            .limit(limit)
        )
        if self.is_postgres:
            ids = list((await s.scalars(pick.with_for_update(skip_locked=True, of=Contact))).all())
            if not ids:
                return []
            stmt = update(Contact).where(Contact.id.in_(ids))
        else:
            stmt = update(Contact).where(Contact.id.in_(pick.scalar_subquery()))
        stmt = stmt.values(**values).returning(Contact).execution_options(synchronize_session=False)
        rows = list((await s.scalars(stmt)).all())
        rows.sort(key=lambda c: (c.next_attempt_at, c.id))
        return rows

    async def lease(
        self,
        owner: str,
        limit: int,
        *,
        company: str = "default",
        lease_seconds: float = 900.0,
        campaign_id: int | None = None,
        now: datetime | None = None,
    ) -> list[Contact]:
        """Take up to `limit` due contacts (status pending, next_attempt_at <= now, not on the DNC
        list, campaign active) for `owner` until now+lease_seconds, earliest due first.

        PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED` then UPDATE in one transaction, so concurrent
        leasers (other processes) skip each other's rows. SQLite: one UPDATE … RETURNING, atomic
        because SQLite has a single writer. An expired lease (crashed holder) is due again.
        """
        if limit <= 0:
            return []
        async with self.sessions.begin() as s:
            return await self._lease_in(s, owner, limit, company, lease_seconds, campaign_id, utcnow(now))

    async def lease_batch(
        self,
        owner: str,
        limit: int,
        *,
        company: str = "default",
        lease_seconds: float = 900.0,
        campaign_id: int | None = None,
        now: datetime | None = None,
    ) -> tuple[int | None, list[Contact]]:
        """`lease`, plus a `batches` row recording it (same transaction); (None, []) when nothing is due."""
        if limit <= 0:
            return None, []
        now = utcnow(now)
        async with self.sessions.begin() as s:
            batch = Batch(company=company, size=0, leased_by=owner, created_at=now, campaign_id=campaign_id)
            s.add(batch)
            await s.flush()  # the id goes into the lease UPDATE itself: one statement fewer
            rows = await self._lease_in(
                s, owner, limit, company, lease_seconds, campaign_id, now, extra={"batch_id": batch.id}
            )
            if not rows:
                await s.delete(batch)
                return None, []
            batch.size = len(rows)
            return batch.id, rows

    async def lease_numbers(
        self,
        owner: str,
        limit: int,
        *,
        company: str = "default",
        lease_seconds: float = 900.0,
        now: datetime | None = None,
        reclaim_every: float = 5.0,
    ) -> tuple[int | None, list[tuple[int, str]]]:
        """`lease_batch` for the panel's next-batch: (batch id, [(contact id, E.164)]) in due order.
        This is the dialer contract's hot path: one atomic statement on PostgreSQL (`pg_fast`), one
        hop to SQLite's thread (`sqlite_fast`), no ORM objects. Expired leases are reclaimed at
        most every `reclaim_every` seconds of `now`."""
        if limit <= 0:
            return None, []
        now = utcnow(now)
        marks: dict[str, datetime] = self.__dict__.setdefault("_reclaimed", {})
        last = marks.get(company)
        reclaim = last is None or abs((now - last).total_seconds()) >= reclaim_every
        if reclaim:
            marks[company] = now
        if not self.is_postgres:
            return await self._lease_numbers_sqlite(owner, limit, company, lease_seconds, now, reclaim)
        from switchboard.store import pg_fast

        if reclaim:
            async with self.sessions.begin() as s:
                await self._reclaim_expired(s, company, now)
        return await pg_fast.lease(self.engine, company=company, now=now, owner=owner, limit=limit,
                                   until=now + timedelta(seconds=lease_seconds))

    async def _lease_numbers_sqlite(self, owner: str, limit: int, company: str, lease_seconds: float,
                                    now: datetime, reclaim: bool) -> tuple[int | None, list[tuple[int, str]]]:
        """SQLite: one statement picks and leases atomically (one writer), the whole transaction in
        one hop to SQLite's thread (`sqlite_fast`)."""
        from switchboard.store import sqlite_fast as fast

        at, until = fast.ts(now), fast.ts(now + timedelta(seconds=lease_seconds))

        def work(db):  # type: ignore[no-untyped-def]
            if reclaim:
                db.execute(fast.RECLAIM, (at, company, at))
            rows = db.execute(fast.LEASE, (owner, until, at, company, at, limit)).fetchall()
            if not rows:
                return None, []
            batch_id = db.execute(fast.INSERT_BATCH, (company, len(rows), owner, at)).fetchone()[0]
            rows.sort(key=lambda r: (r[2], r[0]))
            return batch_id, [(r[0], r[1]) for r in rows]

        return await fast.run(self.engine, work)

    async def renew_lease(
        self, contact_ids: Sequence[int], owner: str, lease_seconds: float, *, now: datetime | None = None
    ) -> int:
        now = utcnow(now)
        stmt = (
            update(Contact)
            .where(Contact.id.in_(list(contact_ids)), Contact.lease_owner == owner, Contact.status == LEASED)
            .values(leased_until=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as s:
            return (await s.execute(stmt)).rowcount or 0

    async def release(
        self,
        contact_id: int,
        *,
        owner: str | None = None,
        next_attempt_at: datetime | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Give a leased contact back without an attempt (e.g. outside calling hours)."""
        conds = [Contact.id == contact_id, Contact.status == LEASED]
        if owner is not None:
            conds.append(Contact.lease_owner == owner)
        stmt = (
            update(Contact)
            .where(*conds)
            .values(
                status=PENDING,
                lease_owner=None,
                leased_until=None,
                next_attempt_at=next_attempt_at or utcnow(now),
                updated_at=utcnow(now),
            )
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as s:
            return bool((await s.execute(stmt)).rowcount)

    async def record_attempt(
        self,
        contact_id: int,
        result: str,
        *,
        reason: str | None = None,
        at: datetime | None = None,
        final: bool,
        next_attempt_at: datetime | None = None,
    ) -> Contact | None:
        """Count one attempt: final -> done, else pending again from `next_attempt_at`."""
        at = utcnow(at)
        async with self.sessions.begin() as s:
            row = await s.get(Contact, contact_id, with_for_update=self.is_postgres)
            if row is None:
                return None
            apply_attempt(row, result, reason, at, final, next_attempt_at)
        return row

    async def set_status(self, contact_id: int, status: str) -> bool:
        stmt = update(Contact).where(Contact.id == contact_id).values(status=status)
        async with self.sessions.begin() as s:
            return bool((await s.execute(stmt.execution_options(synchronize_session=False))).rowcount)


def apply_attempt(
    row: Contact, result: str, reason: str | None, at: datetime, final: bool, next_attempt_at: datetime | None
) -> None:
    row.attempts = (row.attempts or 0) + 1
    row.last_result = result
    row.last_reason = reason
    row.last_attempt_at = at
    row.lease_owner = None
    row.leased_until = None
    row.status = DONE if final else PENDING
    row.next_attempt_at = None if final else (next_attempt_at or at)
    row.updated_at = at


async def _on_dnc(s: Any, phones: Sequence[str]) -> set[str]:
    found: set[str] = set()
    wanted = list(set(phones))
    for i in range(0, len(wanted), 500):
        rows = await s.scalars(select(DoNotCall.phone_e164).where(DoNotCall.phone_e164.in_(wanted[i:i + 500])))
        found.update(rows.all())
    return found


def _fields(c: NewContact, blocked: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    return dict(
        phone=c.phone,
        phone_e164=c.phone_e164,
        phone_national=c.phone_national,
        name=c.name,
        attributes=dict(c.attributes),
        timezone=c.timezone,
        company=c.company,
        campaign_id=c.campaign_id,
        external_id=c.external_id,
        next_attempt_at=c.next_attempt_at or utcnow(),
        status=DNC if c.phone_e164 in blocked else PENDING,
        attempts=0,
    )
