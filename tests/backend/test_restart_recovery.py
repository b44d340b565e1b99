"""Starting the app over a database a dead process left behind (in-process; e2e kills a real one)."""

from __future__ import annotations

import asyncio
import time

import pytest

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.services.events import EventBroker
from backend.services.operations import OperationsService
from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app
from tests.backend.fakes import FixedClock

pytestmark = pytest.mark.anyio


async def test_start_fails_interrupted_operations_and_runs_pending_ones_in_order(
    settings: Settings, fakes: Fakes
) -> None:
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
