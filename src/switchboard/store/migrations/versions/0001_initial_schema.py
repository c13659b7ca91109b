"""initial schema: contacts, campaigns/batches, lines, operators, scenarios, calls + events,
results outbox, panel receipts, do-not-call, alerts, kv

Revision ID: 0001
Revises: -
Create Date: 2026-11-22 05:33:35.181282
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Self-contained types (never import models here: later model changes must not rewrite history).
TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("scenario", sa.String(length=200), nullable=True),
        sa.Column("calling_hours_start", sa.String(length=5), nullable=True),
        sa.Column("calling_hours_end", sa.String(length=5), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company", "name", name="uq_campaigns_company_name"),
    )
    op.create_table(
        "do_not_call",
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("added_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("phone_e164"),
    )
    op.create_table(
        "kv",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "operators",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("scenario", sa.String(length=200), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company", "direction", "phone_number", "scenario", name="uq_operators"),
    )
    op.create_table(
        "outbound_lines",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("max_per_minute", sa.Integer(), nullable=True),
        sa.Column("max_per_day", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company", "phone_number", name="uq_lines_company_phone"),
    )
    op.create_table(
        "panel_receipts",
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("status", sa.String(length=100), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )
    op.create_table(
        "scenarios",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company", "name", name="uq_scenarios_company_name"),
    )
    op.create_table(
        "batches",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("leased_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("batch_id", ID, nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("phone_national", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_result", sa.String(length=100), nullable=True),
        sa.Column("last_reason", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("leased_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index("ix_contacts_campaign", ["campaign_id"], unique=False)
        batch_op.create_index("ix_contacts_due", ["company", "status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_contacts_lease", ["company", "status", "leased_until"], unique=False)
        batch_op.create_index("ix_contacts_external", ["company", "external_id"], unique=False)
        batch_op.create_index("ix_contacts_phone", ["phone_e164"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("scenario", sa.String(length=200), nullable=True),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("number_id", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("line", sa.String(length=32), nullable=True),
        sa.Column("line_id", sa.String(length=100), nullable=True),
        sa.Column("operator", sa.String(length=32), nullable=True),
        sa.Column("operator_id", sa.String(length=100), nullable=True),
        sa.Column("originated_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("result", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("user_message", sa.Text(), nullable=True),
        sa.Column("transcripts", sa.JSON(), nullable=False),
        sa.Column("recording_path", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_contact", ["contact_id"], unique=False)
        batch_op.create_index("ix_calls_ended", ["company", "ended_at"], unique=False)
        batch_op.create_index("ix_calls_phone_time", ["phone_e164", "originated_at"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index("ix_call_events_call", ["call_id", "seq"], unique=False)

    op.create_table(
        "results_outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("results_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("results_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("results_outbox")
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index("ix_call_events_call")

    op.drop_table("call_events")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_phone_time")
        batch_op.drop_index("ix_calls_ended")
        batch_op.drop_index("ix_calls_contact")

    op.drop_table("calls")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_phone")
        batch_op.drop_index("ix_contacts_external")
        batch_op.drop_index("ix_contacts_lease")
        batch_op.drop_index("ix_contacts_due")
        batch_op.drop_index("ix_contacts_campaign")

    op.drop_table("contacts")
    op.drop_table("batches")
    op.drop_table("scenarios")
    op.drop_table("panel_receipts")
    op.drop_table("outbound_lines")
    op.drop_table("operators")
    op.drop_table("kv")
    op.drop_table("do_not_call")
    op.drop_table("campaigns")
    op.drop_table("alerts")
