"""SQLAlchemy models: the tables Switchboard keeps locally (SQLite by default, PostgreSQL at scale).

No ORM relationships on purpose: rows cross the async boundary detached, so lazy loads could never
work; repositories join explicitly where they need to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from switchboard import clock


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone; stored there as naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use switchboard.clock.now()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Integer ids that are BIGINT on PostgreSQL but still SQLite's auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return clock.now()


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    scenario: Mapped[str | None] = mapped_column(String(200), default=None)
    calling_hours_start: Mapped[str | None] = mapped_column(String(5), default=None)  # "09:00"
    calling_hours_end: Mapped[str | None] = mapped_column(String(5), default=None)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    max_attempts: Mapped[int | None] = mapped_column(Integer, default=None)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (UniqueConstraint("company", "name", name="uq_campaigns_company_name"),)


class Batch(Base):
    """One next-batch answer (built-in panel) or one batch received from an external panel."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    external_id: Mapped[str | None] = mapped_column(String(100), default=None)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    size: Mapped[int] = mapped_column(Integer, default=0)
    leased_by: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(100), default=None)  # the panel's number id
    phone: Mapped[str] = mapped_column(String(64))  # as given
    phone_e164: Mapped[str] = mapped_column(String(20))
    phone_national: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    # pending -> leased -> pending (retry) | done ; dnc when opted out. Pending contacts always have
    # next_attempt_at (set at insert), so "due" is one index range.
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_result: Mapped[str | None] = mapped_column(String(100), default=None)
    last_reason: Mapped[str | None] = mapped_column(Text, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)
    __table_args__ = (
        Index("ix_contacts_due", "company", "status", "next_attempt_at"),
        Index("ix_contacts_lease", "company", "status", "leased_until"),
        Index("ix_contacts_phone", "phone_e164"),
        Index("ix_contacts_campaign", "campaign_id"),
        Index("ix_contacts_external", "company", "external_id"),
    )


class OutboundLine(Base):
    __tablename__ = "outbound_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    phone_number: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    external_id: Mapped[str | None] = mapped_column(String(100), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, default=None)
    max_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    max_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (UniqueConstraint("company", "phone_number", name="uq_lines_company_phone"),)


class Operator(Base):
    """A human agent calls are transferred to; `scenario` None = serves every scenario."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    direction: Mapped[str] = mapped_column(String(10))  # inbound | outbound
    phone_number: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    scenario: Mapped[str | None] = mapped_column(String(200), default=None)
    external_id: Mapped[str | None] = mapped_column(String(100), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (
        UniqueConstraint("company", "direction", "phone_number", "scenario", name="uq_operators"),
    )


class ScenarioRegistration(Base):
    """Scenarios the engine registered with the built-in panel (`register-scenarios`)."""

    __tablename__ = "scenarios"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (UniqueConstraint("company", "name", name="uq_scenarios_company_name"),)


class CallRecord(Base):
    __tablename__ = "calls"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # engine's call id (uuid)
    company: Mapped[str] = mapped_column(String(100), default="default")
    direction: Mapped[str] = mapped_column(String(10))
    scenario: Mapped[str | None] = mapped_column(String(200), default=None)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    number_id: Mapped[str | None] = mapped_column(String(100), default=None)  # panel's number id
    phone: Mapped[str] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(20), default=None)
    line: Mapped[str | None] = mapped_column(String(32), default=None)
    line_id: Mapped[str | None] = mapped_column(String(100), default=None)
    operator: Mapped[str | None] = mapped_column(String(32), default=None)
    operator_id: Mapped[str | None] = mapped_column(String(100), default=None)
    originated_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    result: Mapped[str | None] = mapped_column(String(100), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    intent: Mapped[str | None] = mapped_column(String(100), default=None)
    user_message: Mapped[str | None] = mapped_column(Text, default=None)
    transcripts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    recording_path: Mapped[str | None] = mapped_column(Text, default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    panel_status: Mapped[str | None] = mapped_column(String(100), default=None)  # what the panel was told
    callback_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the call back this call made
    created_at: Mapped[datetime] = mapped_column(default=_now)
    __table_args__ = (
        Index("ix_calls_phone_time", "phone_e164", "originated_at"),
        Index("ix_calls_ended", "company", "ended_at"),
        Index("ix_calls_contact", "contact_id"),
        Index("ix_calls_number", "company", "number_id"),
    )


class CallEvent(Base):
    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (Index("ix_call_events_call", "call_id", "seq"),)


class OutboxItem(Base):
    """A result waiting for delivery to the panel; written in the call's own transaction."""

    __tablename__ = "results_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(30), default="report_result")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | delivered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=_now)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class PanelReceipt(Base):
    """Idempotency keys the built-in panel has applied: a replayed report is acknowledged, not redone."""

    __tablename__ = "panel_receipts"
    idempotency_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(BigId, default=None)
    status: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=_now)
    # sha256 of the applied body: the same key with another body is a conflict, not a replay
    body_hash: Mapped[str | None] = mapped_column(String(64), default=None)


class DoNotCall(Base):
    __tablename__ = "do_not_call"
    phone_e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str | None] = mapped_column(String(100), default=None)  # scenario/step/import/api
    added_at: Mapped[datetime] = mapped_column(default=_now)


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    kind: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class KeyValue(Base):
    """Small durable state (dialer paused flag, cursors) that must survive a restart."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class Callback(Base):
    """A call back booked by a flow (no operator free), an AI persona or the API; the dialer dials
    it when due (higher priority first), within calling hours and line limits."""

    __tablename__ = "callbacks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    phone: Mapped[str] = mapped_column(String(64))
    phone_e164: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    number_id: Mapped[str | None] = mapped_column(String(100), default=None)  # the panel's contact id
    scenario: Mapped[str | None] = mapped_column(String(200), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=10)
    due_at: Mapped[datetime] = mapped_column()
    # scheduled -> dialing -> scheduled (retry) | done | cancelled
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str] = mapped_column(String(20), default="flow")  # flow | persona | api
    call_id: Mapped[str | None] = mapped_column(String(64), default=None)  # the call that booked it
    last_call_id: Mapped[str | None] = mapped_column(String(64), default=None)
    last_result: Mapped[str | None] = mapped_column(String(100), default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)
    __table_args__ = (
        Index("ix_callbacks_due", "company", "status", "due_at"),
        Index("ix_callbacks_phone", "phone_e164"),
    )


class Ticket(Base):
    """A support ticket an AI persona (or the API) opened for a caller."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    call_id: Mapped[str | None] = mapped_column(String(64), default=None)
    phone: Mapped[str | None] = mapped_column(String(64), default=None)
    persona: Mapped[str | None] = mapped_column(String(100), default=None)
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    order_number: Mapped[str | None] = mapped_column(String(100), default=None)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | closed
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)
    __table_args__ = (Index("ix_tickets_company_status", "company", "status", "id"),)
