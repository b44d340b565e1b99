"""instance leases: which backend process runs a local operation, and whether that process still lives

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-19
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backend_instances",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("machine_key", sa.String(200), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("request_hash")
        batch.drop_column("owner_id")
    op.drop_table("backend_instances")
