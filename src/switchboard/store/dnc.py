"""The do-not-call list, keyed by E.164 (normalise with switchboard.phones first)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.models import Contact, DoNotCall


class DncRepo(Repository):
    async def add(self, phone_e164: str, *, reason: str | None = None, source: str | None = None) -> bool:
        """Add a number (True if new). Its pending contacts become `dnc` in the same transaction,
        so a lease can never hand them out again."""
        if not phone_e164.startswith("+"):
            raise ValueError(f"DNC numbers are E.164 (+...), got {phone_e164!r}")
        insert = pg_insert if self.is_postgres else sqlite_insert
        stmt = (
            insert(DoNotCall)
            .values(phone_e164=phone_e164, reason=reason, source=source, added_at=utcnow())
            .on_conflict_do_nothing(index_elements=["phone_e164"])
        )
        async with self.sessions.begin() as s:
            added = bool((await s.execute(stmt)).rowcount)
            await s.execute(
                update(Contact)
                .where(Contact.phone_e164 == phone_e164, Contact.status == "pending")
                .values(status="dnc")
                .execution_options(synchronize_session=False)
            )
        return added

    async def remove(self, phone_e164: str) -> bool:
        async with self.sessions.begin() as s:
            return bool(
                (await s.execute(delete(DoNotCall).where(DoNotCall.phone_e164 == phone_e164))).rowcount
            )

    async def contains(self, phone_e164: str) -> bool:
        async with self.sessions() as s:
            return await s.get(DoNotCall, phone_e164) is not None

    async def contains_many(self, phones: Iterable[str]) -> set[str]:
        wanted = list(set(phones))
        found: set[str] = set()
        async with self.sessions() as s:
            for i in range(0, len(wanted), 500):
                rows = await s.scalars(
                    select(DoNotCall.phone_e164).where(DoNotCall.phone_e164.in_(wanted[i : i + 500]))
                )
                found.update(rows.all())
        return found

    async def get(self, phone_e164: str) -> DoNotCall | None:
        async with self.sessions() as s:
            return await s.get(DoNotCall, phone_e164)

    async def list(self, *, offset: int = 0, limit: int = 50) -> Page:
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(DoNotCall))
            rows = await s.scalars(
                select(DoNotCall)
                .order_by(DoNotCall.added_at, DoNotCall.phone_e164)
                .offset(offset)
                .limit(limit)
            )
            return Page(list(rows.all()), int(total or 0), offset, limit)
