"""operation attempts: each run of an operation (where, start/end, outcome, error, resumed epoch), and
the automatic retries a request allows (``max_retries``; null: the server's setting)

Kept as a JSON list on the operation row so an attempt changes in the same compare-and-set write as the
status it follows. Existing operations start with an empty list (their runs were never recorded).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("attempt_log", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("max_retries", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("max_retries")
        batch.drop_column("attempt_log")
