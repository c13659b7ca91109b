"""panel receipts remember a hash of the body they applied, so an idempotency key reused with a
different body is refused (409) instead of silently dropping the second result

Revision ID: hardening_receipt_hash
Revises: campaigns_followups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hardening_receipt_hash"
down_revision = "campaigns_followups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("panel_receipts") as batch:
        batch.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("panel_receipts") as batch:
        batch.drop_column("body_hash")
