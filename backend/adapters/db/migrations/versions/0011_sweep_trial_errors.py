"""sweep trial errors: why a trial failed when it has no operation to tell it

A trial whose params make a training request the backend refuses (a strategy they break) never becomes
an operation: the refusal's message is kept on the trial, for the sweep view.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweep_trials") as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweep_trials") as batch:
        batch.drop_column("error")
