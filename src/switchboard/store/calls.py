"""Calls and their timelines. A finished call, its events, its outbox row and (optionally) the
contact's attempt are written in ONE transaction, so a crash never leaves a result half-recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.contacts import apply_attempt
from switchboard.store.followups import CallbackOutcome, apply_callback_outcome
from switchboard.store.models import Callback, CallEvent, CallRecord, Contact, OutboxItem


@dataclass(slots=True)
class CallData:
    """Everything known about a call; None fields are left untouched when updating a started call."""

    id: str
    direction: str  # outbound | inbound
    phone: str
    company: str = "default"
    phone_e164: str | None = None
    scenario: str | None = None
    contact_id: int | None = None
    campaign_id: int | None = None
    number_id: str | None = None
    line: str | None = None
    line_id: str | None = None
    operator: str | None = None
    operator_id: str | None = None
    originated_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    result: str | None = None
    reason: str | None = None
    intent: str | None = None
    user_message: str | None = None
    transcripts: list[dict[str, Any]] | None = None  # [{"role": "caller", "text": ..., "at": iso}, ...]
    recording_path: str | None = None
    attributes: dict[str, Any] | None = None
    panel_status: str | None = None
    callback_id: int | None = None


@dataclass(slots=True)
class ContactHistory:
    """What compliance needs from past calls: this contact's own attempts (by the panel's contact
    id: a contact imported again is a new contact) and this person's recent attempts (by phone:
    daily caps protect the person, whichever list they are on)."""

    attempts: int = 0
    last_result: str | None = None
    last_scenario: str | None = None
    last_attempt_at: datetime | None = None
    last_delivered: bool = True  # the last result has reached the panel (not still in the outbox)
    recent_attempts: list[datetime] = field(default_factory=list)


@dataclass(slots=True)
class EventData:
    at: datetime
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class OutboxEntry:
    """A payload for the panel (the `report-result` body) and the key that makes it idempotent."""

    idempotency_key: str
    payload: dict[str, Any]
    kind: str = "report_result"


@dataclass(slots=True)
class AttemptOutcome:
    """How the contact's attempt state changes with this call (decided by the dialer's policy)."""

    contact_id: int
    final: bool
    next_attempt_at: datetime | None = None


class CallsRepo(Repository):
    async def start(self, call: CallData) -> None:
        """Write the call before originating it (state that must survive a crash comes first)."""
        call.originated_at = call.originated_at or utcnow()
        async with self.sessions.begin() as s:
            s.add(CallRecord(**_row_fields(call)))

    async def record(
        self,
        call: CallData,
        events: Sequence[EventData] = (),
        *,
        outbox: OutboxEntry | None = None,
        attempt: AttemptOutcome | None = None,
        callback: CallbackOutcome | None = None,
    ) -> bool:
        """Record a finished call: upsert the call row, append its timeline, enqueue its result
        and count the contact's attempt, atomically.

        Idempotent on the outbox key: recording the same result twice returns False and changes
        nothing (a retried `record` after an ambiguous failure is safe).
        """
        async with self.sessions() as s:
            try:
                async with s.begin():
                    if outbox is not None:
                        s.add(
                            OutboxItem(
                                idempotency_key=outbox.idempotency_key,
                                call_id=None,
                                kind=outbox.kind,
                                payload=outbox.payload,
                                next_attempt_at=utcnow(),
                            )
                        )
                        await s.flush()
                    row = await s.get(CallRecord, call.id)
                    if row is None:
                        row = CallRecord(**_row_fields(call))
                        s.add(row)
                    else:
                        for key, value in _row_fields(call).items():
                            if value is not None:
                                setattr(row, key, value)
                    await s.flush()
                    if outbox is not None:
                        item = await s.scalar(
                            select(OutboxItem).where(OutboxItem.idempotency_key == outbox.idempotency_key)
                        )
                        assert item is not None
                        item.call_id = call.id
                    base = await s.scalar(select(func.count()).where(CallEvent.call_id == call.id)) or 0
                    s.add_all(
                        CallEvent(call_id=call.id, seq=base + i, at=e.at, kind=e.kind, data=dict(e.data))
                        for i, e in enumerate(events)
                    )
                    if attempt is not None:
                        contact = await s.get(Contact, attempt.contact_id, with_for_update=self.is_postgres)
                        if contact is not None:
                            apply_attempt(
                                contact,
                                call.result or "unknown",
                                call.reason,
                                call.ended_at or utcnow(),
                                attempt.final,
                                attempt.next_attempt_at,
                            )
                    if callback is not None:
                        row_cb = await s.get(Callback, callback.callback_id, with_for_update=self.is_postgres)
                        if row_cb is not None:
                            apply_callback_outcome(row_cb, callback, call.id, call.ended_at or utcnow())
            except IntegrityError:
                if outbox is None:
                    raise
                async with self.sessions() as check:
                    existing = await check.scalar(
                        select(OutboxItem.id).where(OutboxItem.idempotency_key == outbox.idempotency_key)
                    )
                if existing is None:
                    raise
                return False
        return True

    async def discard(self, call_id: str) -> bool:
        """Delete a call written before dialing that was never attempted (the PBX was unavailable):
        it must not count as an attempt of the contact. Finished calls are never deleted."""
        async with self.sessions.begin() as s:
            row = await s.get(CallRecord, call_id)
            if row is None or row.ended_at is not None:
                return False
            await s.delete(row)
            return True

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.sessions() as s:
            return await s.get(CallRecord, call_id)

    async def events(self, call_id: str) -> list[CallEvent]:
        stmt = select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.seq)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())

    async def list(
        self,
        *,
        company: str | None = None,
        direction: str | None = None,
        result: str | None = None,
        phone_e164: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        conds = _filters(company, direction, result, phone_e164, since, until)
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(CallRecord).where(*conds))
            rows = await s.scalars(
                select(CallRecord)
                .where(*conds)
                .order_by(CallRecord.created_at.desc(), CallRecord.id)
                .offset(offset)
                .limit(limit)
            )
            return Page(list(rows.all()), int(total or 0), offset, limit)

    async def iter_finished(
        self,
        *,
        company: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        chunk: int = 500,
    ) -> AsyncIterator[CallRecord]:
        """Every ended call in time order, streamed in chunks (CSV export)."""
        conds = [*_filters(company, None, None, None, since, until), CallRecord.ended_at.is_not(None)]
        last: tuple[datetime, str] | None = None
        while True:
            stmt = select(CallRecord).where(*conds)
            if last is not None:
                stmt = stmt.where(
                    (CallRecord.ended_at > last[0])
                    | ((CallRecord.ended_at == last[0]) & (CallRecord.id > last[1]))
                )
            stmt = stmt.order_by(CallRecord.ended_at, CallRecord.id).limit(chunk)
            async with self.sessions() as s:
                rows = list((await s.scalars(stmt)).all())
            for row in rows:
                yield row
            if len(rows) < chunk:
                return
            last = (rows[-1].ended_at, rows[-1].id)  # type: ignore[assignment]

    async def outbound_attempts_since(self, phone_e164: str, since: datetime) -> int:
        """Outbound calls to this number originated since `since` (per-contact daily caps)."""
        stmt = select(func.count()).where(
            CallRecord.phone_e164 == phone_e164,
            CallRecord.direction == "outbound",
            CallRecord.originated_at >= since,
        )
        async with self.sessions() as s:
            return int(await s.scalar(stmt) or 0)

    async def outbound_on_line_since(self, line: str, since: datetime) -> int:
        """Outbound calls originated on `line` since `since` (re-seeds per-day line counters after a
        restart)."""
        stmt = select(func.count()).where(
            CallRecord.line == line,
            CallRecord.direction == "outbound",
            CallRecord.originated_at >= since,
        )
        async with self.sessions() as s:
            return int(await s.scalar(stmt) or 0)

    async def history(self, *, company: str, number_id: str | None, phone_e164: str,
                      since: datetime) -> ContactHistory:
        """One query: the dialed calls of contact `number_id` (all time) and of `phone_e164` since
        `since`, each with whether its result still waits in the outbox."""
        mine = CallRecord.number_id == number_id if number_id is not None else CallRecord.phone_e164 == phone_e164
        stmt = (
            select(CallRecord.number_id, CallRecord.phone_e164, CallRecord.result, CallRecord.scenario,
                   CallRecord.originated_at, OutboxItem.status)
            .outerjoin(OutboxItem, OutboxItem.call_id == CallRecord.id)
            .where(CallRecord.company == company, CallRecord.direction == "outbound",
                   CallRecord.line.is_not(None),
                   or_(mine, (CallRecord.phone_e164 == phone_e164) & (CallRecord.originated_at >= since)))
        )
        async with self.sessions() as s:
            rows = (await s.execute(stmt)).all()
        out = ContactHistory()
        last = None
        for nid, phone, result, scenario, at, outbox_status in rows:
            if (nid == number_id) if number_id is not None else True:
                out.attempts += 1
                if at is not None and (last is None or at > last[3]):
                    last = (result, scenario, outbox_status, at)
            if phone == phone_e164 and at is not None and at >= since:
                out.recent_attempts.append(at)
        if last is not None:
            out.last_result, out.last_scenario, status, out.last_attempt_at = last
            out.last_delivered = status != "pending"
        return out

    async def count_by_result(self, *, company: str | None = None, since: datetime | None = None,
                              until: datetime | None = None) -> list[tuple[str | None, str, int]]:
        """(scenario, result, calls) for finished calls that were dialed or answered (reports)."""
        conds = [*_filters(company, None, None, None, since, until), CallRecord.result.is_not(None),
                 CallRecord.line.is_not(None)]
        stmt = (select(CallRecord.scenario, CallRecord.result, func.count())
                .where(*conds).group_by(CallRecord.scenario, CallRecord.result))
        async with self.sessions() as s:
            return [(scenario, result, int(n)) for scenario, result, n in (await s.execute(stmt)).all()]

    async def last_activity(self, *, company: str | None = None) -> datetime | None:
        """When the last recorded call started or ended (None: no calls yet)."""
        conds = [] if company is None else [CallRecord.company == company]
        async with self.sessions() as s:
            ended = await s.scalar(select(func.max(CallRecord.ended_at)).where(*conds))
            started = await s.scalar(select(func.max(CallRecord.originated_at)).where(*conds))
        return max((t for t in (ended, started) if t is not None), default=None)

    async def last_outbound(self, phone_e164: str) -> CallRecord | None:
        stmt = (
            select(CallRecord)
            .where(CallRecord.phone_e164 == phone_e164, CallRecord.direction == "outbound")
            .order_by(CallRecord.originated_at.desc())
            .limit(1)
        )
        async with self.sessions() as s:
            return await s.scalar(stmt)

    async def unfinished(self, *, company: str | None = None) -> list[CallRecord]:
        """Calls started but never ended (the process died mid-call): recovery decides their fate."""
        stmt = select(CallRecord).where(CallRecord.ended_at.is_(None))
        if company is not None:
            stmt = stmt.where(CallRecord.company == company)
        async with self.sessions() as s:
            return list((await s.scalars(stmt.order_by(CallRecord.originated_at))).all())


def _filters(company, direction, result, phone_e164, since, until):  # type: ignore[no-untyped-def]
    conds = []
    if company is not None:
        conds.append(CallRecord.company == company)
    if direction is not None:
        conds.append(CallRecord.direction == direction)
    if result is not None:
        conds.append(CallRecord.result == result)
    if phone_e164 is not None:
        conds.append(CallRecord.phone_e164 == phone_e164)
    if since is not None:
        conds.append(CallRecord.created_at >= since)
    if until is not None:
        conds.append(CallRecord.created_at < until)
    return conds


def _row_fields(call: CallData) -> dict[str, Any]:
    """Set fields only: None means "unknown here", so inserts take column defaults and updates
    keep what an earlier write stored."""
    return {k: v for k, v in asdict(call).items() if v is not None}
