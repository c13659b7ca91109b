"""The built-in panel's side of `report-result`: apply a reported call result to the contact it
concerns, exactly once per idempotency key (a receipt row is written in the same transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from switchboard.store.base import Repository, utcnow
from switchboard.store.contacts import DONE, LEASED, PENDING, apply_attempt
from switchboard.store.models import Campaign, Contact, PanelReceipt

# Results that end a contact's campaign; everything else is retried while attempts remain.
FINAL_RESULTS = frozenset(
    {"connected_to_operator", "not_interested", "disconnected", "hangup", "dnc", "opted_out"}
)
RETRY_RESULTS = frozenset({"missed", "busy", "no_answer", "unknown"})  # plus every failed:<reason>


@dataclass(frozen=True, slots=True)
class ReportedResult:
    company: str
    status: str
    number_id: int | None = None
    phone_e164: str | None = None
    reason: str | None = None
    attempted_at: datetime | None = None
    phone_raw: str | None = None  # as reported: normalised (in `region`) only when the id finds no contact
    region: str = "IR"
    body_hash: str | None = None  # of the request: its idempotency key reused with another body is a conflict

    def e164(self) -> str | None:
        if self.phone_e164:
            return self.phone_e164
        if self.phone_raw:
            from switchboard.phones import try_normalize

            parsed = try_normalize(self.phone_raw, self.region)
            return parsed.e164 if parsed else None
        return None


@dataclass(frozen=True, slots=True)
class RetryDecision:
    final: bool
    next_attempt_at: datetime | None = None


# (result, attempts so far including this one, max attempts, attempted_at) -> decision
RetryPolicy = Callable[[str, int, int, datetime], RetryDecision]


def _phones_needed(items: list[tuple[str, ReportedResult, RetryPolicy]],
                   contacts: dict[int, list]) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    """(company, E.164) of reports whose number id finds no contact of their company (inbound
    calls, another panel's ids): those are matched by phone number."""
    out = set()
    for _, report, _ in items:
        found = contacts.get(report.number_id) if report.number_id is not None else None
        if found is None or found[1] != report.company:
            phone = report.e164()
            if phone:
                out.add((report.company, phone))
    return out


def _plan(items: list[tuple[str, ReportedResult, RetryPolicy]], seen: dict[str, tuple[int | None, str | None]],
          contacts: dict[int, list], by_phone: dict[tuple[str, str], list],  # type: ignore[type-arg]
          max_by_campaign: dict[int, int | None], default_max_attempts: int
          ) -> tuple[list[ApplyOutcome], list[tuple[str, int | None, str, datetime, str | None]],
                     dict[int, tuple[int, str, str | None, datetime, str, datetime | None]]]:
    """What a group of reports does, in order, as data: (outcomes, receipts to insert, contact
    changes by id). Contact rows are [id, company, campaign_id, attempts, phone_e164]."""
    outcomes: list[ApplyOutcome] = []
    receipts: list[tuple[str, int | None, str, datetime, str | None]] = []
    changes: dict[int, tuple[int, str, str | None, datetime, str, datetime | None]] = {}
    for key, report, policy in items:
        if key in seen:
            seen_contact, seen_hash = seen[key]
            conflict = report.body_hash is not None and seen_hash is not None and seen_hash != report.body_hash
            outcomes.append(ApplyOutcome(True, seen_contact, conflict=conflict))
            continue
        contact = contacts.get(report.number_id) if report.number_id is not None else None
        if contact is None or contact[1] != report.company:
            phone = report.e164()
            contact = by_phone.get((report.company, phone)) if phone else None
        contact_id = contact[0] if contact is not None else None
        seen[key] = (contact_id, report.body_hash)
        receipts.append((key, contact_id, report.status, utcnow(), report.body_hash))
        if contact is None or report.status == "inbound_call":
            outcomes.append(ApplyOutcome(False, contact_id))
            continue
        at = report.attempted_at or utcnow()
        max_attempts = max_by_campaign.get(contact[2]) or default_max_attempts
        contact[3] = (contact[3] or 0) + 1
        decision = policy(report.status, contact[3], max_attempts, at)
        status = DONE if decision.final else PENDING
        changes[contact[0]] = (contact[3], report.status, report.reason, at, status,
                               None if decision.final else (decision.next_attempt_at or at))
        outcomes.append(ApplyOutcome(False, contact_id, status))
    return outcomes, receipts, changes


def default_retry_policy(retry_delay_seconds: float) -> RetryPolicy:
    """missed/busy/unknown/failed:* retried after the delay while attempts remain; the rest final."""

    def decide(result: str, attempts: int, max_attempts: int, at: datetime) -> RetryDecision:
        retryable = result in RETRY_RESULTS or result.startswith("failed")
        if not retryable or result in FINAL_RESULTS or attempts >= max_attempts:
            return RetryDecision(final=True)
        return RetryDecision(final=False, next_attempt_at=at + timedelta(seconds=retry_delay_seconds))

    return decide


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    duplicate: bool  # the key was seen before: nothing changed
    contact_id: int | None  # the contact updated (None: inbound / unknown number)
    contact_status: str | None = None
    conflict: bool = False  # the key was seen with a different body: nothing changed (HTTP 409)


def _replayed(seen: PanelReceipt, body_hash: str | None) -> ApplyOutcome:
    """A key seen before: a replay of the same body, or a conflict when the body differs."""
    conflict = body_hash is not None and seen.body_hash is not None and seen.body_hash != body_hash
    return ApplyOutcome(True, seen.contact_id, conflict=conflict)


class ReportsRepo(Repository):
    async def apply(
        self, idempotency_key: str, report: ReportedResult, *, policy: RetryPolicy, default_max_attempts: int,
        body_hash: str | None = None,
    ) -> ApplyOutcome:
        at = report.attempted_at or utcnow()
        body_hash = body_hash or report.body_hash
        async with self.sessions() as s:
            seen = await s.get(PanelReceipt, idempotency_key)  # the common replay: no failed insert
            if seen is not None:
                return _replayed(seen, body_hash)
            await s.rollback()
            try:
                async with s.begin():
                    s.add(
                        PanelReceipt(
                            idempotency_key=idempotency_key, status=report.status, received_at=utcnow(),
                            body_hash=body_hash,
                        )
                    )
                    await s.flush()
                    contact = await self._find(s, report)
                    if contact is None or report.status == "inbound_call":
                        return ApplyOutcome(False, None if contact is None else contact.id)
                    max_attempts = default_max_attempts
                    if contact.campaign_id is not None:
                        camp = await s.get(Campaign, contact.campaign_id)
                        if camp is not None and camp.max_attempts:
                            max_attempts = camp.max_attempts
                    decision = policy(report.status, (contact.attempts or 0) + 1, max_attempts, at)
                    apply_attempt(
                        contact, report.status, report.reason, at, decision.final, decision.next_attempt_at
                    )
                    receipt = await s.get(PanelReceipt, idempotency_key)
                    if receipt is not None:
                        receipt.contact_id = contact.id
                    return ApplyOutcome(False, contact.id, contact.status)
            except IntegrityError:
                async with self.sessions() as check:
                    seen = await check.get(PanelReceipt, idempotency_key)
                if seen is None:
                    raise
                return _replayed(seen, body_hash)

    async def _find(self, s, report: ReportedResult) -> Contact | None:  # type: ignore[no-untyped-def]
        lock = self.is_postgres
        if report.number_id is not None:
            row = await s.get(Contact, report.number_id, with_for_update=lock)
            if row is not None and row.company == report.company:
                return row
        phone = report.e164()
        if phone:
            # Prefer the contact currently out for dialing, then the most recently touched one.
            stmt = (
                select(Contact)
                .where(
                    Contact.company == report.company,
                    Contact.phone_e164 == phone,
                    Contact.status.in_((LEASED, PENDING, DONE)),
                )
                .order_by((Contact.status == LEASED).desc(), Contact.updated_at.desc())
                .limit(1)
            )
            if lock:
                stmt = stmt.with_for_update()
            return await s.scalar(stmt)
        return None

    async def apply_many(
        self, items: list[tuple[str, ReportedResult, RetryPolicy]], *, default_max_attempts: int
    ) -> list[ApplyOutcome]:
        """`apply` for a group of reports in ONE transaction (group commit): a handful of set-based
        statements whatever the group's size, so concurrent reports cost one commit together.
        Same effect as applying them one by one in order (a key seen before, or twice in the
        group, is a duplicate; two reports on one contact count two attempts). Raises
        IntegrityError when another writer took one of the keys meanwhile (apply them one by
        one then)."""
        if not items:
            return []
        if not self.is_postgres:
            return await self._apply_many_sqlite(items, default_max_attempts)
        async with self.sessions() as s, s.begin():
            keys = list({k for k, _, _ in items})
            seen: dict[str, tuple[int | None, str | None]] = {
                k: (c, h) for k, c, h in (await s.execute(
                    select(PanelReceipt.idempotency_key, PanelReceipt.contact_id, PanelReceipt.body_hash)
                    .where(PanelReceipt.idempotency_key.in_(keys)))).all()}
            cols = (Contact.id, Contact.company, Contact.campaign_id, Contact.attempts, Contact.phone_e164)
            by_id = {r.number_id for _, r, _ in items if r.number_id is not None}
            contacts: dict[int, list] = {}  # type: ignore[type-arg]
            if by_id:
                # Locked in id order: two processes' groups never wait on each other in a cycle.
                stmt = select(*cols).where(Contact.id.in_(by_id)).order_by(Contact.id).with_for_update()
                contacts = {row[0]: list(row) for row in (await s.execute(stmt)).all()}
            by_phone: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]
            for company, phone in _phones_needed(items, contacts):
                stmt = (select(*cols).where(Contact.company == company, Contact.phone_e164 == phone,
                                            Contact.status.in_((LEASED, PENDING, DONE)))
                        .order_by((Contact.status == LEASED).desc(), Contact.updated_at.desc()).limit(1)
                        .with_for_update())
                row = (await s.execute(stmt)).first()
                if row is not None:
                    by_phone[(company, phone)] = contacts.setdefault(row[0], list(row))
            campaign_ids = {c[2] for c in contacts.values() if c[2] is not None}
            max_by_campaign: dict[int, int | None] = {}
            if campaign_ids:
                max_by_campaign = dict((await s.execute(select(Campaign.id, Campaign.max_attempts)
                                                        .where(Campaign.id.in_(campaign_ids)))).all())
            outcomes, receipts, changes = _plan(items, seen, contacts, by_phone, max_by_campaign,
                                                default_max_attempts)
            if receipts:
                await s.execute(insert(PanelReceipt.__table__), [
                    {"idempotency_key": k, "contact_id": c, "status": st, "received_at": at, "body_hash": h}
                    for k, c, st, at, h in receipts])
            if changes:
                table = Contact.__table__
                await s.execute(
                    update(table).where(table.c.id == bindparam("b_id")).values(
                        attempts=bindparam("b_attempts"), last_result=bindparam("b_result"),
                        last_reason=bindparam("b_reason"), last_attempt_at=bindparam("b_at"),
                        status=bindparam("b_status"), next_attempt_at=bindparam("b_next"),
                        updated_at=bindparam("b_at"), lease_owner=None, leased_until=None),
                    [{"b_id": cid, "b_attempts": a, "b_result": r, "b_reason": why, "b_at": at, "b_status": st,
                      "b_next": nxt} for cid, (a, r, why, at, st, nxt) in changes.items()])
        return outcomes

    async def _apply_many_sqlite(self, items: list[tuple[str, ReportedResult, RetryPolicy]],
                                 default_max_attempts: int) -> list[ApplyOutcome]:
        """The same on SQLite, the whole transaction in one hop to its thread (`sqlite_fast`)."""
        from switchboard.store import sqlite_fast as fast

        def work(db):  # type: ignore[no-untyped-def]
            keys = list({k for k, _, _ in items})
            seen = {k: (c, h) for k, c, h in db.execute(
                f"SELECT idempotency_key, contact_id, body_hash FROM panel_receipts "
                f"WHERE idempotency_key IN ({fast.marks(len(keys))})", keys).fetchall()}
            cols = "id, company, campaign_id, attempts, phone_e164"
            ids = list({r.number_id for _, r, _ in items if r.number_id is not None})
            contacts = {row[0]: list(row) for row in db.execute(
                f"SELECT {cols} FROM contacts WHERE id IN ({fast.marks(len(ids))})", ids).fetchall()} if ids else {}
            by_phone = {}
            for company, phone in _phones_needed(items, contacts):
                row = db.execute(f"SELECT {cols} FROM contacts WHERE company = ? AND phone_e164 = ? AND status IN "
                                 "('leased', 'pending', 'done') ORDER BY status = 'leased' DESC, updated_at DESC "
                                 "LIMIT 1", (company, phone)).fetchone()
                if row is not None:
                    by_phone[(company, phone)] = contacts.setdefault(row[0], list(row))
            campaign_ids = list({c[2] for c in contacts.values() if c[2] is not None})
            max_by_campaign = dict(db.execute(
                f"SELECT id, max_attempts FROM campaigns WHERE id IN ({fast.marks(len(campaign_ids))})",
                campaign_ids).fetchall()) if campaign_ids else {}
            outcomes, receipts, changes = _plan(items, seen, contacts, by_phone, max_by_campaign,
                                                default_max_attempts)
            db.executemany(fast.INSERT_RECEIPT, [(k, c, st, fast.ts(at), h) for k, c, st, at, h in receipts])
            db.executemany(fast.UPDATE_CONTACT, [(a, r, why, fast.ts(at), st, fast.ts(nxt), fast.ts(at), cid)
                                                 for cid, (a, r, why, at, st, nxt) in changes.items()])
            return outcomes

        try:
            return await fast.run(self.engine, work)
        except sqlite3.IntegrityError as exc:  # a key another process applied meanwhile
            raise IntegrityError("INSERT INTO panel_receipts", None, exc) from exc

    async def seen(self, idempotency_key: str) -> bool:
        async with self.sessions() as s:
            return await s.get(PanelReceipt, idempotency_key) is not None
