"""sweep owners: the backend instance that drives each sweep

Like an operation's ``owner_id``: only the owner's sweep driver asks Optuna for trials and starts them;
when the owner's lease is gone another backend adopts the sweep (a compare-and-set on this column).
Sweeps from before owners have none: the first backend to drive one adopts it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("owner_id")
