"""ORM rows. The schema itself is owned by the Alembic migrations beside this module."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no time zone, PostgreSQL's would differ."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class OperationRow(Base):
    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_status_created", "status", "created_at"),
        Index("ix_operations_project_created", "project", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    execution_mode: Mapped[str] = mapped_column(String(16))
    mode_reason: Mapped[str] = mapped_column(Text, default="")
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    progress_percentage: Mapped[float] = mapped_column(Float, default=0.0)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Monotonic insertion order: FIFO must not depend on clock resolution.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    host_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    host_session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    require_gpu: Mapped[bool] = mapped_column(Boolean, default=False)
    max_retries: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The tags in the order given, for reading; ``operation_tags`` holds them again for filtering.
    tags: Mapped[list[str]] = mapped_column(JSON)
    workload: Mapped[str] = mapped_column(String(32), default="strategy", server_default="strategy")
    # The API token that submitted / cancelled it (None when tokens were not required).
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Each run of the operation (backend.domain.attempts.Attempt.as_dict), oldest first.
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")


class OperationTagRow(Base):
    """One tag of one operation: filtering on a tag is an indexed join, alike on SQLite and PostgreSQL
    (a JSON "contains" is spelled differently by each)."""

    __tablename__ = "operation_tags"

    operation_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class InstanceRow(Base):
    """One running backend process and its lease: alive while ``heartbeat_at`` is recent."""

    __tablename__ = "backend_instances"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    machine_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """One API token: its sha256, never the token."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OperationResultRow(Base):
    """The claim on storing an operation's model (its primary key: one per operation), then the
    version stored under it."""

    __tablename__ = "operation_results"

    operation_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    owner_id: Mapped[str] = mapped_column(String(40))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    strategy: Mapped[str | None] = mapped_column(String(200), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SignedMessageRow(Base):
    """A verified signed message's id (its sha256), remembered until its timestamp is too old to verify."""

    __tablename__ = "signed_messages"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ModelAliasRow(Base):
    """Where one alias of one model points now."""

    __tablename__ = "model_aliases"

    strategy: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelAliasHistoryRow(Base):
    """One set, move or removal of an alias."""

    __tablename__ = "model_alias_history"
    __table_args__ = (Index("ix_model_alias_history_model", "strategy", "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    strategy: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SweepRow(Base):
    """One sweep: its request (base, space, objective …) and where it stands; Optuna keeps the study."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    best_alias: Mapped[str | None] = mapped_column(String(64), nullable=True)
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The backend instance whose driver runs the sweep (see ``backend.services.sweep_driver``).
    owner_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class SweepTrialRow(Base):
    """One trial of a sweep: its Optuna trial, its operation, its params and outcome."""

    __tablename__ = "sweep_trials"

    sweep_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    optuna_trial_id: Mapped[int] = mapped_column(Integer)
    operation_id: Mapped[str] = mapped_column(String(40), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    objective: Mapped[float | None] = mapped_column(Float, nullable=True)
    reported: Mapped[dict[str, float]] = mapped_column(JSON)
    #: Why it failed when no operation tells it: the refusal of its training request (migration 0011).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
