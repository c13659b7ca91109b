"""The built-in panel's side of `report-result`: apply a reported call result to the contact it
concerns, exactly once per idempotency key (a receipt row is written in the same transaction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
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


@dataclass(frozen=True, slots=True)
class RetryDecision:
    final: bool
    next_attempt_at: datetime | None = None


# (result, attempts so far including this one, max attempts, attempted_at) -> decision
RetryPolicy = Callable[[str, int, int, datetime], RetryDecision]


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
        if report.phone_e164:
            # Prefer the contact currently out for dialing, then the most recently touched one.
            stmt = (
                select(Contact)
                .where(
                    Contact.company == report.company,
                    Contact.phone_e164 == report.phone_e164,
                    Contact.status.in_((LEASED, PENDING, DONE)),
                )
                .order_by((Contact.status == LEASED).desc(), Contact.updated_at.desc())
                .limit(1)
            )
            if lock:
                stmt = stmt.with_for_update()
            return await s.scalar(stmt)
        return None

    async def seen(self, idempotency_key: str) -> bool:
        async with self.sessions() as s:
            return await s.get(PanelReceipt, idempotency_key) is not None
