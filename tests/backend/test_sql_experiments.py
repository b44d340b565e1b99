"""Projects, names, tags and workloads in SQL: filters, per-project counts, and the 0003 → 0004 upgrade.

SQLite always; PostgreSQL too when MODELYARD_TEST_POSTGRES_URL answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from backend.adapters.db.engine import migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.domain.operations import Operation, OperationFilter, OperationStatus, transition
from backend.services.events import EventBroker
from backend.services.operations import OperationsService
from shared.contracts.training import ProgressUpdate
from tests.backend.databases import DATABASES, empty_database
from tests.backend.fakes import FixedClock

T0 = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from empty_database(request.param, tmp_path)


@pytest.fixture
def repo(database: Engine) -> SqlOperationRepository:
    migrate(database)
    return SqlOperationRepository(database)


def make_op(op_id: str, minutes: int, **changes: object) -> Operation:
    at = T0 + timedelta(minutes=minutes)
    return Operation(
        id=op_id,
        type="training",
        status=OperationStatus.PENDING,
        execution_mode="local",
        mode_reason="test",
        request={},
        created_at=at,
        updated_at=at,
    ).with_changes(**changes)


def ids(repo: SqlOperationRepository, where: OperationFilter, limit: int = 50) -> tuple[list[str], int]:
    ops, total = repo.find(where, limit=limit, offset=0)
    return [o.id for o in ops], total


@pytest.fixture
def experiments(repo: SqlOperationRepository) -> SqlOperationRepository:
    """op_1 fx [gpu, baseline] strategy; op_2 fx [gpu] tabular, completed; op_3 crypto [baseline]
    strategy; op_4 default, no tags, plugin, running."""
    repo.add(make_op("op_1", 1, project="fx", tags=("gpu", "baseline")))
    op_2 = make_op("op_2", 2, project="fx", tags=("gpu",), workload="tabular")
    repo.add(op_2)
    running = transition(op_2, OperationStatus.RUNNING, T0 + timedelta(minutes=3))
    repo.save(running, expected=OperationStatus.PENDING)
    repo.save(
        transition(running, OperationStatus.COMPLETED, T0 + timedelta(minutes=9)), expected=running.status
    )
    repo.add(make_op("op_3", 3, project="crypto", tags=("baseline",)))
    op_4 = make_op("op_4", 4, workload="plugin")
    repo.add(op_4)
    repo.save(transition(op_4, OperationStatus.RUNNING, T0 + timedelta(minutes=5)), expected=op_4.status)
    return repo


def test_find_by_project_counts_only_that_project(experiments: SqlOperationRepository) -> None:
    assert ids(experiments, OperationFilter(project="fx")) == (["op_2", "op_1"], 2)
    assert ids(experiments, OperationFilter(project="default")) == (["op_4"], 1)
    assert ids(experiments, OperationFilter(project="nothing")) == ([], 0)


def test_find_by_tags_needs_every_tag_given(experiments: SqlOperationRepository) -> None:
    assert ids(experiments, OperationFilter(tags=("baseline",))) == (["op_3", "op_1"], 2)
    assert ids(experiments, OperationFilter(tags=("gpu", "baseline"))) == (["op_1"], 1)
    assert ids(experiments, OperationFilter(tags=("gpu", "gpu"))) == (["op_2", "op_1"], 2)
    assert ids(experiments, OperationFilter(tags=("gpu", "missing"))) == ([], 0)


def test_find_by_workload_and_unfinished_combine_with_the_other_filters(
    experiments: SqlOperationRepository,
) -> None:
    assert ids(experiments, OperationFilter(workload="tabular")) == (["op_2"], 1)
    assert ids(experiments, OperationFilter(unfinished_only=True)) == (["op_4", "op_3", "op_1"], 3)
    assert ids(experiments, OperationFilter(unfinished_only=True, project="fx", tags=("gpu",))) == (
        ["op_1"],
        1,
    )
    both = OperationFilter(statuses=(OperationStatus.COMPLETED,), unfinished_only=True)
    assert ids(experiments, both) == ([], 0)


def test_total_counts_every_match_beyond_the_page(experiments: SqlOperationRepository) -> None:
    assert ids(experiments, OperationFilter(tags=("baseline",)), limit=1) == (["op_3"], 2)


def test_tags_are_stored_once_each_in_their_order(repo: SqlOperationRepository) -> None:
    repo.add(make_op("op_t", 0, tags=("z", "a", "z")))
    stored = repo.get("op_t")
    assert stored is not None
    assert stored.tags == ("z", "a", "z")  # the row keeps what the domain gave it …
    assert ids(repo, OperationFilter(tags=("z",))) == (["op_t"], 1)  # … and the filter still finds it once


def test_project_summaries_count_by_status_most_recently_active_first(
    experiments: SqlOperationRepository,
) -> None:
    summaries = experiments.project_summaries()
    assert [s.project for s in summaries] == ["fx", "default", "crypto"]
    fx, default, crypto = summaries
    assert fx.by_status == {OperationStatus.PENDING: 1, OperationStatus.COMPLETED: 1}
    assert fx.total == 2
    assert fx.last_activity == T0 + timedelta(minutes=9)  # op_2's completion
    assert default.by_status == {OperationStatus.RUNNING: 1}
    assert default.last_activity == T0 + timedelta(minutes=5)
    assert crypto.last_activity == T0 + timedelta(minutes=3)


def test_project_summaries_of_an_empty_database_are_empty(repo: SqlOperationRepository) -> None:
    assert repo.project_summaries() == []


def test_the_service_keeps_each_tag_once_and_lists_a_running_one_live(repo: SqlOperationRepository) -> None:
    service = OperationsService(repo, FixedClock(), EventBroker(), progress_interval_s=3600.0)
    op, created = service.create(
        op_type="training",
        request={},
        execution_mode="local",
        mode_reason="t",
        project="fx",
        name="baseline",
        tags=["gpu", "baseline", "gpu"],
        workload="tabular",
    )
    assert created
    assert (op.project, op.name, op.tags, op.workload) == ("fx", "baseline", ("gpu", "baseline"), "tabular")
    service.mark_running(op.id)
    service.report_progress(op.id, ProgressUpdate(percentage=40.0, phase="training"))
    [listed], total = service.list_operations(OperationFilter(project="fx", tags=("baseline",)))
    assert total == 1
    assert listed.progress.percentage == 40.0  # the live view, ahead of the throttled database write
    assert listed.tags == ("gpu", "baseline")


def _insert_at_0003(engine: Engine, op_id: str, request: dict[str, object], seq: int) -> None:
    """A row as revision 0003 wrote it (its columns only), through SQLAlchemy core so the JSON is bound
    as each database wants it."""
    table = sa.table(
        "operations",
        *(sa.column(c) for c in ("id", "type", "status", "execution_mode", "mode_reason")),
        *(sa.column(c) for c in ("progress_percentage", "seq", "created_at", "updated_at")),
        *(sa.column(c, sa.JSON) for c in ("progress", "request", "warnings", "history", "decisions")),
    )
    at = datetime(2025, 1, 5, 12, 0)
    with engine.begin() as conn:
        conn.execute(
            table.insert().values(
                id=op_id,
                type="training",
                status="completed",
                execution_mode="local",
                mode_reason="",
                progress_percentage=100.0,
                seq=seq,
                created_at=at,
                updated_at=at,
                progress={"percentage": 100.0, "phase": "completed"},
                request=request,
                warnings=[],
                history=[],
                decisions=[],
            )
        )


def test_an_existing_database_upgrades_in_place(database: Engine) -> None:
    migrate(database, "0003")
    _insert_at_0003(database, "op_tab", {"workload": "tabular", "tabular": {"dataset": "iris.csv"}}, 1)
    _insert_at_0003(database, "op_old", {"strategy_name": "trend"}, 2)  # from before workloads existed
    migrate(database)
    repo = SqlOperationRepository(database)
    tabular, old = repo.get("op_tab"), repo.get("op_old")
    assert tabular is not None
    assert old is not None
    assert (tabular.project, tabular.name, tabular.tags, tabular.workload) == ("default", None, (), "tabular")
    assert (old.project, old.name, old.tags, old.workload) == ("default", None, (), "strategy")
    assert tabular.status is OperationStatus.COMPLETED
    assert ids(repo, OperationFilter(project="default", workload="tabular")) == (["op_tab"], 1)
    repo.add(make_op("op_new", 10, tags=("after",)))
    assert ids(repo, OperationFilter(tags=("after",))) == (["op_new"], 1)
