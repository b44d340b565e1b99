"""Sweeps and their trials, and Optuna's own tables

``sweeps`` holds each sweep's request and status, ``sweep_trials`` links every trial number to its
operation and Optuna trial. Optuna's RDB storage (studies, trials, intermediate values …) lives in the
same database: its tables are created here from Optuna's own models, so they exist once the migration
ran. Optuna's schema is then Optuna's (pinned version); its ``alembic_version`` is ours, which is why the
storage is opened with ``skip_compatibility_check``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("best_alias", sa.String(64), nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_sweeps_status", "sweeps", ["status"])
    op.create_table(
        "sweep_trials",
        sa.Column(
            "sweep_id", sa.String(40), sa.ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("optuna_trial_id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.String(40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("objective", sa.Float(), nullable=True),
        sa.Column("reported", sa.JSON(), nullable=False),
    )
    op.create_index("ix_sweep_trials_operation_id", "sweep_trials", ["operation_id"])
    from optuna.storages._rdb import models as optuna_models

    optuna_models.BaseModel.metadata.create_all(op.get_bind())


def downgrade() -> None:
    from optuna.storages._rdb import models as optuna_models

    optuna_models.BaseModel.metadata.drop_all(op.get_bind())
    op.drop_index("ix_sweep_trials_operation_id", table_name="sweep_trials")
    op.drop_table("sweep_trials")
    op.drop_index("ix_sweeps_status", table_name="sweeps")
    op.drop_table("sweeps")
