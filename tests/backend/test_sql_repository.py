"""SqlOperationRepository on SQLite, and on PostgreSQL when MODELYARD_TEST_POSTGRES_URL answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.adapters.db.engine import build_engine, migrate, normalize_database_url
from backend.adapters.db.operations import SqlOperationRepository
from backend.domain.operations import (
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    Progress,
    transition,
)
from tests.backend.databases import DATABASES, empty_database

T0 = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASES)
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlOperationRepository]:
    for engine in empty_database(request.param, tmp_path):
        migrate(engine)
        yield SqlOperationRepository(engine)


def make_op(op_id: str, *, minutes: int = 0, key: str | None = None, **changes: object) -> Operation:
    at = T0 + timedelta(minutes=minutes)
    return Operation(
        id=op_id,
        type="training",
        status=OperationStatus.PENDING,
        execution_mode="local",
        mode_reason="test",
        request={"strategy_name": "trend", "symbols": ["EURUSD"]},
        created_at=at,
        updated_at=at,
        idempotency_key=key,
        warnings=("w1",),
    ).with_changes(**changes)


def test_an_operation_round_trips_with_every_field(repo: SqlOperationRepository) -> None:
    op = make_op("op_a", key="k", project="fx", name="run-1.b", tags=("b", "a"), workload="tabular")
    repo.add(op)
    running = transition(op, OperationStatus.RUNNING, T0 + timedelta(seconds=1)).with_changes(
        progress=Progress(42.5, "training", "epoch 2/5", 2, 5, {"loss": 0.5}),
        history=({"epoch": 0, "train_loss": 1.0},),
        device="cpu",
    )
    assert repo.save(running, expected=OperationStatus.PENDING)
    failed = transition(
        running, OperationStatus.FAILED, T0 + timedelta(seconds=2), error=OperationError("x", "y", {"a": 1})
    )
    assert repo.save(failed, expected=OperationStatus.RUNNING)
    assert repo.get("op_a") == failed
    assert repo.get_by_idempotency_key("k") == failed
    assert repo.get("op_missing") is None


def test_save_is_compare_and_set_on_the_status(repo: SqlOperationRepository) -> None:
    op = make_op("op_b")
    repo.add(op)
    cancelled = transition(op, OperationStatus.CANCELLED, T0)
    assert repo.save(cancelled, expected=OperationStatus.PENDING)
    late_start = transition(op, OperationStatus.RUNNING, T0)
    assert not repo.save(late_start, expected=OperationStatus.PENDING)
    stored = repo.get("op_b")
    assert stored is not None
    assert stored.status is OperationStatus.CANCELLED


def test_a_duplicate_idempotency_key_returns_the_first_operation(repo: SqlOperationRepository) -> None:
    first = repo.add(make_op("op_1", key="same"))
    second = repo.add(make_op("op_2", key="same"))
    assert second.id == first.id == "op_1"
    assert repo.get("op_2") is None


def test_find_is_newest_first_with_filters_and_paging(repo: SqlOperationRepository) -> None:
    for i in range(5):
        repo.add(make_op(f"op_{i}", minutes=i))
    done = transition(make_op("op_1", minutes=1), OperationStatus.CANCELLED, T0)
    repo.save(done, expected=OperationStatus.PENDING)
    ops, total = repo.find(OperationFilter(), limit=2, offset=1)
    assert [o.id for o in ops] == ["op_3", "op_2"]
    assert total == 5
    where = OperationFilter(statuses=(OperationStatus.PENDING,), op_type="training")
    pending, count = repo.find(where, limit=10, offset=0)
    assert count == 4
    assert "op_1" not in [o.id for o in pending]
    assert repo.pending_ids() == ["op_0", "op_2", "op_3", "op_4"]
    assert repo.count_by_status() == {OperationStatus.PENDING: 4, OperationStatus.CANCELLED: 1}


def test_migrations_apply_twice_without_harm(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'twice.db'}")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0009"
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_postgres_urls_use_the_psycopg3_driver() -> None:
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"
