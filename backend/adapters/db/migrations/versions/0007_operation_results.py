"""operation results: one claim per operation on storing its model, so N backends store it once; the
ids of signed messages, so N backends refuse a replay alike

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operation_results",
        sa.Column(
            "operation_id",
            sa.String(40),
            sa.ForeignKey("operations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("owner_id", sa.String(40), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("strategy", sa.String(200), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
    )
    op.create_table(
        "signed_messages",
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_signed_messages_expires_at", "signed_messages", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_signed_messages_expires_at", table_name="signed_messages")
    op.drop_table("signed_messages")
    op.drop_table("operation_results")
