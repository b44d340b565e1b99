"""Model aliases, and the history of every alias move

``model_aliases`` holds where each alias of a model points now (one row per alias); ``model_alias_history``
records every set, move and removal with the token that made it and the version it moved from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_aliases",
        sa.Column("strategy", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=True),
        sa.Column("set_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "model_alias_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("strategy", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_model_alias_history_model", "model_alias_history", ["strategy", "name", "id"])


def downgrade() -> None:
    op.drop_index("ix_model_alias_history_model", table_name="model_alias_history")
    op.drop_table("model_alias_history")
    op.drop_table("model_aliases")
