"""The results outbox table: results waiting for the panel, claimed by one deliverer at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.models import OutboxItem

PENDING, DELIVERED = "pending", "delivered"


class OutboxRepo(Repository):
    async def add(
        self,
        idempotency_key: str,
        payload: dict[str, Any],
        *,
        kind: str = "report_result",
        call_id: str | None = None,
    ) -> bool:
        """Enqueue a payload; False when the key is already queued (idempotent)."""
        try:
            async with self.sessions.begin() as s:
                s.add(
                    OutboxItem(
                        idempotency_key=idempotency_key,
                        payload=payload,
                        kind=kind,
                        call_id=call_id,
                        next_attempt_at=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def claim_due(
        self,
        owner: str,
        limit: int = 20,
        *,
        claim_seconds: float = 60.0,
        now: datetime | None = None,
        ignore_backoff: bool = False,
    ) -> list[OutboxItem]:
        """Claim due pending items for `owner` (other deliverers skip them until the claim expires).
        `ignore_backoff` also takes items whose retry time has not come (final flush on stop)."""
        now = utcnow(now)
        conds = [
            OutboxItem.status == PENDING,
            or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
        ]
        if not ignore_backoff:
            conds.append(OutboxItem.next_attempt_at <= now)
        due = and_(*conds)
        pick = (
            select(OutboxItem.id).where(due).order_by(OutboxItem.next_attempt_at, OutboxItem.id).limit(limit)
        )
        values = dict(claimed_by=owner, claimed_until=now + timedelta(seconds=claim_seconds))
        async with self.sessions.begin() as s:
            if self.is_postgres:
                ids = list((await s.scalars(pick.with_for_update(skip_locked=True))).all())
                if not ids:
                    return []
                stmt = update(OutboxItem).where(OutboxItem.id.in_(ids))
            else:
                stmt = update(OutboxItem).where(OutboxItem.id.in_(pick.scalar_subquery()))
            stmt = stmt.values(**values).returning(OutboxItem).execution_options(synchronize_session=False)
            rows = list((await s.scalars(stmt)).all())
        rows.sort(key=lambda r: (r.next_attempt_at, r.id))
        return rows

    async def renew_claims(self, owner: str, ids: list[int], *, claim_seconds: float,
                           now: datetime | None = None) -> int:
        """Extend `owner`'s claim on rows it is still working on (the deliverer's heartbeat)."""
        if not ids:
            return 0
        stmt = (
            update(OutboxItem)
            .where(OutboxItem.id.in_(ids), OutboxItem.claimed_by == owner, OutboxItem.status == PENDING)
            .values(claimed_until=utcnow(now) + timedelta(seconds=claim_seconds))
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as s:
            return int((await s.execute(stmt)).rowcount or 0)

    async def release_claims(self, owners: list[str]) -> int:
        """Free the rows claimed by deliverers known to be dead (their process is gone)."""
        if not owners:
            return 0
        stmt = (
            update(OutboxItem)
            .where(OutboxItem.claimed_by.in_(owners), OutboxItem.status == PENDING)
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as s:
            return int((await s.execute(stmt)).rowcount or 0)

    async def claim_owners(self, *, now: datetime | None = None) -> list[str]:
        """Deliverers holding live claims."""
        stmt = select(OutboxItem.claimed_by).where(
            OutboxItem.status == PENDING, OutboxItem.claimed_by.is_not(None), OutboxItem.claimed_until >= utcnow(now)
        ).distinct()
        async with self.sessions() as s:
            return [o for o in (await s.scalars(stmt)).all() if o]

    async def mark_delivered(self, item_id: int, *, now: datetime | None = None) -> bool:
        stmt = (
            update(OutboxItem)
            .where(OutboxItem.id == item_id, OutboxItem.status == PENDING)
            .values(
                status=DELIVERED,
                delivered_at=utcnow(now),
                claimed_by=None,
                claimed_until=None,
                attempts=OutboxItem.attempts + 1,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as s:
            return bool((await s.execute(stmt)).rowcount)

    async def mark_retry(self, item_id: int, error: str, next_attempt_at: datetime) -> None:
        stmt = (
            update(OutboxItem)
            .where(OutboxItem.id == item_id, OutboxItem.status == PENDING)
            .values(
                attempts=OutboxItem.attempts + 1,
                last_error=error[:2000],
                next_attempt_at=next_attempt_at,
                claimed_by=None,
                claimed_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as s:
            await s.execute(stmt)

    async def get(self, idempotency_key: str) -> OutboxItem | None:
        async with self.sessions() as s:
            return await s.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == idempotency_key))

    async def pending_count(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).where(OutboxItem.status == PENDING)) or 0)

    async def next_due_at(self) -> datetime | None:
        """When the earliest pending item becomes claimable (retry time and any claim both past)."""
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(OutboxItem.next_attempt_at, OutboxItem.claimed_until)
                    .where(OutboxItem.status == PENDING)
                    .order_by(OutboxItem.next_attempt_at)
                    .limit(50)
                )
            ).all()
        times = [max(t, c) if c is not None else t for t, c in rows]
        return min(times) if times else None

    async def list(self, *, status: str | None = None, offset: int = 0, limit: int = 50) -> Page:
        conds = [] if status is None else [OutboxItem.status == status]
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(OutboxItem).where(*conds))
            rows = await s.scalars(
                select(OutboxItem).where(*conds).order_by(OutboxItem.id).offset(offset).limit(limit)
            )
            return Page(list(rows.all()), int(total or 0), offset, limit)
