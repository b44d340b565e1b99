"""Alembic environment: run programmatically by ``backend.adapters.db.engine.migrate`` on a connection."""

from __future__ import annotations

from alembic import context

from backend.adapters.db.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through backend.adapters.db.engine.migrate(engine)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
