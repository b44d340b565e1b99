"""host sessions on operations: where a host-mode training runs, its last heartbeat, its attempts

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("host_url", sa.String(500), nullable=True))
        batch.add_column(sa.Column("host_session_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("require_gpu", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("require_gpu")
        batch.drop_column("attempts")
        batch.drop_column("heartbeat_at")
        batch.drop_column("host_session_id")
        batch.drop_column("host_url")
