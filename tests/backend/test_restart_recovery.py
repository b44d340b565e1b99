"""Starting the app over a database a dead process left behind (in-process; e2e kills a real one)."""

from __future__ import annotations

import asyncio
import time

import pytest

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.domain.operations import Operation, OperationError
from backend.services.events import EventBroker
from backend.services.operations import OperationsService
from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app
from tests.backend.fakes import FixedClock

pytestmark = pytest.mark.anyio


async def test_without_retries_start_fails_interrupted_operations_and_runs_pending_ones_in_order(
    settings: Settings, fakes: Fakes
) -> None:
    settings = settings.model_copy(update={"max_retries": 0})
    engine = build_engine(settings.database_url)
    migrate(engine)
    previous = OperationsService(SqlOperationRepository(engine), FixedClock(), EventBroker())
    request = {
        "workload": "strategy",
        "strategy_name": "trend",
        "strategy_yaml": "name: trend\n",
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
    }
    ids = [
        previous.create(op_type="training", request=request, execution_mode="local", mode_reason="t")[0].id
        for _ in range(3)
    ]
    previous.mark_running(ids[0])
    engine.dispose()

    app, lifespan = await start_app(settings, fakes)
    try:
        ops = app.state.components.operations
        interrupted = ops.get(ids[0])
        assert interrupted.status.value == "failed"
        assert interrupted.error.code == "interrupted"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(ops.get(i).status.value == "completed" for i in ids[1:]):
                break
            await asyncio.sleep(0.01)
        assert [ops.get(i).status.value for i in ids[1:]] == ["completed", "completed"]
        assert fakes.engine.runs == ids[1:]
    finally:
        await lifespan.__aexit__(None, None, None)


REQUEST = {
    "workload": "strategy",
    "strategy_name": "trend",
    "strategy_yaml": "name: trend\n",
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
}


def _left_running(settings: Settings, *, retries_used: int = 0, max_retries: int | None = None) -> str:
    """An operation a dead backend was training, as its database row was left."""
    engine = build_engine(settings.database_url)
    migrate(engine)
    previous = OperationsService(SqlOperationRepository(engine), FixedClock(), EventBroker())
    op_id = previous.create(
        op_type="training", request=REQUEST, execution_mode="local", mode_reason="t", max_retries=max_retries
    )[0].id
    previous.mark_running(op_id)
    for _ in range(retries_used):
        previous.requeue(op_id, OperationError("interrupted", "earlier crash"))
        previous.mark_running(op_id)
    engine.dispose()
    return op_id


async def _ended(ops: OperationsService, op_id: str) -> Operation:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        op = ops.get(op_id)
        if op.is_terminal:
            return op
        await asyncio.sleep(0.01)
    raise AssertionError(f"operation {op_id} did not end within 10 s: {ops.get(op_id)}")


async def test_start_requeues_a_dead_backends_running_training_to_resume_from_its_checkpoint(
    settings: Settings, fakes: Fakes
) -> None:
    op_id = _left_running(settings)

    app, lifespan = await start_app(settings, fakes)
    try:
        op = await _ended(app.state.components.operations, op_id)
    finally:
        await lifespan.__aexit__(None, None, None)

    assert op.status.value == "completed"
    assert fakes.engine.runs == [op_id]
    assert fakes.engine.resumed == [True]
    first, second = op.attempt_log
    assert (first.outcome, first.error_code) == ("requeued", "interrupted")
    assert (second.outcome, second.trigger, second.from_checkpoint) == ("completed", "automatic", True)
    assert second.where is not None
    assert second.where.startswith("local backend ")


async def _failed_interrupted_after_restart(settings: Settings, fakes: Fakes, op_id: str) -> Operation:
    app, lifespan = await start_app(settings, fakes)
    try:
        op = app.state.components.operations.get(op_id)
    finally:
        await lifespan.__aexit__(None, None, None)
    assert op.status.value == "failed"
    assert op.error is not None
    assert op.error.code == "interrupted"
    return op


async def test_an_operation_out_of_retries_fails_interrupted_on_start(
    settings: Settings, fakes: Fakes
) -> None:
    op_id = _left_running(settings, retries_used=2)

    op = await _failed_interrupted_after_restart(settings, fakes, op_id)
    assert "retried 2 times" in op.error.message
    assert [a.outcome for a in op.attempt_log] == ["requeued", "requeued", "failed"]
    assert fakes.engine.runs == []


async def test_a_request_without_retries_fails_interrupted_whatever_the_server_allows(
    settings: Settings, fakes: Fakes
) -> None:
    op_id = _left_running(settings, max_retries=0)

    op = await _failed_interrupted_after_restart(settings, fakes, op_id)
    assert op.max_retries == 0
    assert fakes.engine.runs == []
