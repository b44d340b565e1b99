"""projects, experiment names and tags on operations, and the workload kind of each

Existing operations are upgraded in place: project 'default', no name, no tags, and the workload read
from their stored request (``request.workload``; 'strategy' where it is missing).

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("project", sa.String(64), nullable=False, server_default="default"))
        batch.add_column(sa.Column("name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("workload", sa.String(32), nullable=False, server_default="strategy"))
        batch.create_index("ix_operations_project_created", ["project", "created_at"])
    _workload_from_request()
    op.create_table(
        "operation_tags",
        sa.Column(
            "operation_id",
            sa.String(40),
            sa.ForeignKey("operations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_index("ix_operation_tags_tag", "operation_tags", ["tag"])


def _workload_from_request() -> None:
    """SQLAlchemy spells the JSON lookup per dialect (json_extract on SQLite, ->> on PostgreSQL)."""
    operations = sa.table("operations", sa.column("request", sa.JSON), sa.column("workload", sa.String))
    stored = operations.c.request["workload"].as_string()
    op.execute(operations.update().where(stored.is_not(None)).values(workload=sa.func.substr(stored, 1, 32)))


def downgrade() -> None:
    op.drop_index("ix_operation_tags_tag", table_name="operation_tags")
    op.drop_table("operation_tags")
    with op.batch_alter_table("operations") as batch:
        batch.drop_index("ix_operations_project_created")
        batch.drop_column("workload")
        batch.drop_column("tags")
        batch.drop_column("name")
        batch.drop_column("project")
