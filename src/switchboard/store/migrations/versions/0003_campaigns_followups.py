"""campaigns: call backs and tickets; calls remember what the panel was told and which call back
they served; calls indexed by the panel's contact id (a contact's history is per contact)

Revision ID: campaigns_followups
Revises: console_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "campaigns_followups"
down_revision = "console_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("number_id", sa.String(length=100), nullable=True),
        sa.Column("scenario", sa.String(length=200), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("last_call_id", sa.String(length=64), nullable=True),
        sa.Column("last_result", sa.String(length=100), nullable=True),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("leased_until", TS, nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_callbacks_due", "callbacks", ["company", "status", "due_at"])
    op.create_index("ix_callbacks_phone", "callbacks", ["phone_e164"])
    op.create_table(
        "tickets",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=100), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("persona", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("order_number", sa.String(length=100), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tickets_company_status", "tickets", ["company", "status", "id"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("panel_status", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("callback_id", ID, nullable=True))
        batch.create_index("ix_calls_number", ["company", "number_id"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_number")
        batch.drop_column("callback_id")
        batch.drop_column("panel_status")
    op.drop_index("ix_tickets_company_status", table_name="tickets")
    op.drop_table("tickets")
    op.drop_index("ix_callbacks_phone", table_name="callbacks")
    op.drop_index("ix_callbacks_due", table_name="callbacks")
    op.drop_table("callbacks")
