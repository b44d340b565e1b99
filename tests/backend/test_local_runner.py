"""LocalTrainingRunner races: a cancel that arrives the instant an operation shows as running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.adapters.operation_logs import FileOperationLogStore
from backend.domain.operations import Operation, OperationStatus
from backend.services.events import EventBroker
from backend.services.local_runner import LocalTrainingRunner
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from tests.backend.fakes import FakeEngine, FixedClock

pytestmark = pytest.mark.anyio

REQUEST = {
    "workload": "strategy",
    "strategy_name": "trend",
    "strategy_yaml": "name: trend\n",
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
}


class CancelOnClaim(OperationsService):
    """Delivers a user's cancel (status, then the runner's token) right after the claim publishes
    ``running``: the first moment an API client can see the operation running and cancel it."""

    runner: LocalTrainingRunner | None = None

    def mark_running(self, op_id: str) -> Operation | None:
        claimed = super().mark_running(op_id)
        if claimed is not None and self.runner is not None:
            self.request_cancel(op_id)
            self.runner.cancel(op_id)
        return claimed


async def test_a_cancel_arriving_as_the_operation_turns_running_stops_it(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    migrate(engine)
    ops = CancelOnClaim(SqlOperationRepository(engine), FixedClock(), EventBroker())
    runner = LocalTrainingRunner(FakeEngine(), ops, LogCapture(FileOperationLogStore(tmp_path / "logs")))
    ops.runner = runner
    await runner.start()
    try:
        op, _ = ops.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
        runner.submit(op.id)
        deadline = time.monotonic() + 10
        while not ops.get(op.id).is_terminal and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert ops.get(op.id).status is OperationStatus.CANCELLED
    finally:
        await runner.stop(5)
        engine.dispose()
