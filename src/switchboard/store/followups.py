"""Call backs and tickets: what a call leaves to do after it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.models import Callback, Ticket

SCHEDULED, DIALING, DONE, CANCELLED = "scheduled", "dialing", "done", "cancelled"
CALLBACK_STATUSES = (SCHEDULED, DIALING, DONE, CANCELLED)


@dataclass(slots=True)
class NewCallback:
    phone: str
    phone_e164: str
    due_at: datetime
    company: str = "default"
    name: str | None = None
    number_id: str | None = None
    scenario: str | None = None
    priority: int = 10
    max_attempts: int = 3
    reason: str | None = None
    source: str = "flow"
    call_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CallbackOutcome:
    """How a call back changes with the call that served it (decided by the dialer's policy):
    `next_due_at` None = done, else scheduled again for then."""

    callback_id: int
    result: str
    next_due_at: datetime | None = None


def apply_callback_outcome(row: Callback, outcome: CallbackOutcome, call_id: str, at: datetime) -> None:
    row.attempts = (row.attempts or 0) + 1
    row.last_result = outcome.result
    row.last_call_id = call_id
    row.last_attempt_at = at
    row.lease_owner = None
    row.leased_until = None
    if outcome.next_due_at is None:
        row.status = DONE
    else:
        row.status = SCHEDULED
        row.due_at = outcome.next_due_at
    row.updated_at = at


class CallbacksRepo(Repository):
    async def add(self, cb: NewCallback) -> Callback:
        row = Callback(company=cb.company, phone=cb.phone, phone_e164=cb.phone_e164, name=cb.name,
                       number_id=cb.number_id, scenario=cb.scenario, priority=cb.priority, due_at=cb.due_at,
                       status=SCHEDULED, attempts=0, max_attempts=cb.max_attempts, reason=cb.reason,
                       source=cb.source, call_id=cb.call_id, details=dict(cb.details), created_at=utcnow(),
                       updated_at=utcnow())
        async with self.sessions.begin() as s:
            # One open call back per number: a second booking moves the first (earliest time and
            # highest priority win) instead of calling the person twice.
            stmt = (select(Callback).where(Callback.company == cb.company, Callback.phone_e164 == cb.phone_e164,
                                           Callback.status == SCHEDULED).order_by(Callback.id).limit(1))
            open_row = await s.scalar(stmt.with_for_update() if self.is_postgres else stmt)
            if open_row is not None:
                open_row.due_at = min(open_row.due_at, cb.due_at)
                open_row.priority = max(open_row.priority, cb.priority)
                open_row.reason = cb.reason or open_row.reason
                open_row.scenario = cb.scenario or open_row.scenario
                open_row.updated_at = utcnow()
                return open_row
            s.add(row)
        return row

    async def get(self, callback_id: int) -> Callback | None:
        async with self.sessions() as s:
            return await s.get(Callback, callback_id)

    async def list(self, *, company: str | None = None, status: str | None = None, phone_e164: str | None = None,
                   offset: int = 0, limit: int = 50) -> Page:
        conds = []
        if company is not None:
            conds.append(Callback.company == company)
        if status is not None:
            conds.append(Callback.status == status)
        if phone_e164 is not None:
            conds.append(Callback.phone_e164 == phone_e164)
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Callback).where(*conds))
            rows = await s.scalars(select(Callback).where(*conds)
                                   .order_by(Callback.due_at, Callback.id).offset(offset).limit(limit))
            return Page(list(rows.all()), int(total or 0), offset, limit)

    async def lease_due(self, owner: str, limit: int, *, company: str, now: datetime | None = None,
                        lease_seconds: float = 1800.0) -> list[Callback]:
        """Take up to `limit` due call backs, highest priority first, then the earliest due.
        A lease whose holder died (time passed) makes the call back due again."""
        if limit <= 0:
            return []
        now = utcnow(now)
        async with self.sessions.begin() as s:
            await s.execute(update(Callback).where(
                Callback.company == company, Callback.status == DIALING, Callback.leased_until < now)
                .values(status=SCHEDULED, lease_owner=None, leased_until=None)
                .execution_options(synchronize_session=False))
            pick = (select(Callback.id).where(Callback.company == company, Callback.status == SCHEDULED,
                                              Callback.due_at <= now)
                    .order_by(Callback.priority.desc(), Callback.due_at, Callback.id).limit(limit))
            if self.is_postgres:
                ids = list((await s.scalars(pick.with_for_update(skip_locked=True))).all())
            else:
                ids = list((await s.scalars(pick)).all())
            if not ids:
                return []
            rows = list((await s.scalars(
                update(Callback).where(Callback.id.in_(ids), Callback.status == SCHEDULED)
                .values(status=DIALING, lease_owner=owner, leased_until=now + timedelta(seconds=lease_seconds),
                        updated_at=now)
                .returning(Callback).execution_options(synchronize_session=False))).all())
        rows.sort(key=lambda c: (-c.priority, c.due_at, c.id))
        return rows

    async def release(self, callback_id: int, *, due_at: datetime | None = None) -> None:
        """Back to scheduled without an attempt (calling hours, stopping)."""
        values: dict[str, Any] = dict(status=SCHEDULED, lease_owner=None, leased_until=None, updated_at=utcnow())
        if due_at is not None:
            values["due_at"] = due_at
        async with self.sessions.begin() as s:
            await s.execute(update(Callback).where(Callback.id == callback_id, Callback.status == DIALING)
                            .values(**values).execution_options(synchronize_session=False))

    async def cancel(self, callback_id: int, *, company: str) -> bool:
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(Callback).where(Callback.id == callback_id, Callback.company == company,
                                       Callback.status == SCHEDULED)
                .values(status=CANCELLED, updated_at=utcnow()).execution_options(synchronize_session=False))
            return bool(result.rowcount)

    async def next_due_at(self, company: str) -> datetime | None:
        async with self.sessions() as s:
            return await s.scalar(select(func.min(Callback.due_at)).where(Callback.company == company,
                                                                          Callback.status == SCHEDULED))

    async def open_count(self, company: str) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(Callback).where(
                Callback.company == company, or_(Callback.status == SCHEDULED, Callback.status == DIALING))) or 0)


class TicketsRepo(Repository):
    async def add(self, *, company: str, subject: str, description: str, priority: str = "normal",
                  call_id: str | None = None, phone: str | None = None, persona: str | None = None,
                  order_number: str | None = None, fields: dict[str, Any] | None = None) -> Ticket:
        row = Ticket(company=company, subject=subject[:300], description=description, priority=priority,
                     call_id=call_id, phone=phone, persona=persona, order_number=order_number,
                     fields=dict(fields or {}), status="open", created_at=utcnow(), updated_at=utcnow())
        async with self.sessions.begin() as s:
            s.add(row)
        return row

    async def get(self, ticket_id: int) -> Ticket | None:
        async with self.sessions() as s:
            return await s.get(Ticket, ticket_id)

    async def list(self, *, company: str | None = None, status: str | None = None, offset: int = 0,
                   limit: int = 50) -> Page:
        conds = []
        if company is not None:
            conds.append(Ticket.company == company)
        if status is not None:
            conds.append(Ticket.status == status)
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Ticket).where(*conds))
            rows = await s.scalars(select(Ticket).where(*conds).order_by(Ticket.id.desc())
                                   .offset(offset).limit(limit))
            return Page(list(rows.all()), int(total or 0), offset, limit)

    async def set_status(self, ticket_id: int, status: str, *, company: str) -> Ticket | None:
        async with self.sessions.begin() as s:
            row = await s.get(Ticket, ticket_id)
            if row is None or row.company != company:
                return None
            row.status = status
            row.updated_at = utcnow()
            return row
