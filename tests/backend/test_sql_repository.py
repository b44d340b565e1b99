"""SqlOperationRepository on SQLite, and on PostgreSQL when MODELYARD_TEST_POSTGRES_URL answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from backend.adapters.db.engine import MIGRATIONS_DIR, build_engine, migrate, normalize_database_url
from backend.adapters.db.operations import SqlOperationRepository
from backend.domain.operations import (
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    Progress,
    retry_operation,
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
    assert [(a.number, a.outcome, a.error_code) for a in failed.attempt_log] == [(1, "failed", "x")]


def test_a_retried_operation_round_trips_its_attempts(repo: SqlOperationRepository) -> None:
    op = make_op("op_r")
    repo.add(op)
    running = transition(op, OperationStatus.RUNNING, T0 + timedelta(seconds=1))
    assert repo.save(running, expected=OperationStatus.PENDING)
    cancelled = transition(running, OperationStatus.CANCELLED, T0 + timedelta(seconds=2))
    assert repo.save(cancelled, expected=OperationStatus.RUNNING)
    retried = retry_operation(cancelled, T0 + timedelta(seconds=3), from_checkpoint=False)
    assert repo.save(retried, expected=OperationStatus.CANCELLED)

    stored = repo.get("op_r")
    assert stored == retried
    assert stored is not None
    assert [(a.number, a.outcome, a.trigger, a.from_checkpoint) for a in stored.attempt_log] == [
        (1, "cancelled", None, False),
        (2, "queued", "manual", False),
    ]


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


def _head() -> str | None:
    """The newest revision in the migrations folder (whichever number it has)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def test_migrations_apply_twice_without_harm(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'twice.db'}")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_postgres_urls_use_the_psycopg3_driver() -> None:
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_summaries_read_each_operation_as_get_would_with_only_the_histories_asked_for(
    repo: SqlOperationRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.adapters.db import operations as sql_operations
    from backend.domain.operations import OperationSummary

    rows = tuple({"epoch": e, "val_loss": 1.0 / e} for e in range(1, 4))
    model = {"strategy": "trend", "name": "m", "version": 3}
    repo.add(
        make_op(
            "op_done",
            status=OperationStatus.COMPLETED,
            history=rows,
            result={"model": model, "history": list(rows)},
        )
    )
    repo.add(make_op("op_norun", status=OperationStatus.COMPLETED, result={"test_metrics": {"f1": 0.5}}))
    repo.add(make_op("op_failed", status=OperationStatus.FAILED, error=OperationError("x", "it broke")))
    repo.add(make_op("op_blank", status=OperationStatus.FAILED, error=OperationError("x", "")))
    repo.add(make_op("op_running", status=OperationStatus.RUNNING, history=rows))
    monkeypatch.setattr(sql_operations, "SUMMARIES_PER_STATEMENT", 2)  # three statements for five ids
    asked = ["op_done", "op_norun", "op_failed", "op_blank", "op_running", "op_missing"]
    found = {s.id: s for s in repo.summaries(asked, histories=["op_running", "op_missing"])}
    for op_id in asked[:-1]:
        op = repo.get(op_id)
        assert op is not None
        assert found[op_id] == OperationSummary.of(op, history=op_id == "op_running")
    assert set(found) == set(asked[:-1])
    assert (found["op_done"].model, found["op_done"].history) == (model, ())
    assert found["op_running"].history == rows
    assert (found["op_blank"].error_message, found["op_running"].error_message) == ("", None)
    assert repo.summaries([], histories=[]) == []
