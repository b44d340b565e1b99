"""A real spawned training child stopped by the SessionRunner exits by itself, long before the grace.

The grace is 120 s here: a child that needed ``terminate()`` would show up as a terminate call (and a
test that hits its deadline), not as a session that merely ended late.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from host_service.adapters.worker_process import ForkServerWorkerLauncher, ProcessWorker
from host_service.domain.ports import WorkerMessage, WorkerSpec
from host_service.domain.sessions import Session, SessionStatus
from host_service.services.datasets import DatasetCache
from host_service.services.supervision import RunnerTimings, SessionRunner
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from tests.host_service.fakes import FakeBackendClient

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STRATEGY = (REPO / "shared/trainkit/workloads/strategy/samples/trend_momentum.yaml").read_text()
DATA_URL = "http://backend.test/data/EURUSD/1h"
GRACE_S = 120.0


class RecordingLauncher:
    """The real launcher; records every terminate/kill the runner sends to its children."""

    def __init__(self) -> None:
        self._real = ForkServerWorkerLauncher()
        self.forced: list[str] = []
        self.workers: list[ProcessWorker] = []
        self.cancel_requested = False
        self.after_cancel: list[str] = []

    def launch(self, spec: WorkerSpec) -> ProcessWorker:
        worker = self._real.launch(spec)
        original_terminate, original_kill = worker.terminate, worker.kill

        def terminate() -> None:
            self.forced.append("terminate")
            original_terminate()

        def kill() -> None:
            self.forced.append("kill")
            original_kill()

        original_drain, original_cancel = worker.drain, worker.request_cancel

        def drain() -> list[WorkerMessage]:
            received = original_drain()
            if self.cancel_requested:
                self.after_cancel.extend(message.kind for message in received)
            return received

        def request_cancel() -> None:
            self.cancel_requested = True
            original_cancel()

        worker.terminate = terminate  # type: ignore[method-assign]
        worker.kill = kill  # type: ignore[method-assign]
        worker.drain = drain  # type: ignore[method-assign]
        worker.request_cancel = request_cancel  # type: ignore[method-assign]
        self.workers.append(worker)
        return worker

    def prepare_next(self) -> None:
        self._real.prepare_next()

    def close(self) -> None:
        self._real.close()


def _session(csv: bytes) -> Session:
    now = datetime.now(UTC)
    return Session(
        session_id="s_cancel",
        operation_id="op_cancel",
        fingerprint="f",
        callback_url="http://backend.test/callback",
        request={
            "strategy_name": "trend_momentum",
            "strategy_yaml": STRATEGY,
            "symbols": ["EURUSD"],
            "timeframes": ["1h"],
            "overrides": {"seed": 1, "epochs": 5000, "early_stopping_patience": 0},
        },
        datasets=[{"filename": "EURUSD_1h.csv", "sha256": hashlib.sha256(csv).hexdigest(), "url": DATA_URL}],
        created_at=now,
        updated_at=now,
    )


@pytest.mark.anyio
async def test_child_stopped_while_starting_exits_by_itself_well_within_the_grace(tmp_path: Path) -> None:
    write_sample_data(tmp_path / "source", symbols=("EURUSD",), timeframes=("1h",), rows=1500)
    csv = (tmp_path / "source" / "EURUSD_1h.csv").read_bytes()
    session = _session(csv)
    launcher = RecordingLauncher()
    runner = SessionRunner(
        session,
        WorkerSpec(session.session_id, session.request, tmp_path / "data", tmp_path / "result", 1.0),
        datasets=DatasetCache(tmp_path / "cache", FakeBackendClient({DATA_URL: csv})),
        launcher=launcher,
        persist=lambda _: None,
        clock=lambda: datetime.now(UTC),
        timings=RunnerTimings(grace_s=GRACE_S, poll_interval_s=0.05, heartbeat_interval_s=1.0),
    )
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(90):
        while session.status is not SessionStatus.RUNNING:  # the child is starting up
            assert not task.done(), session.error
            await asyncio.sleep(0.05)
    runner.request_stop()
    async with asyncio.timeout(60):  # far below the 120 s grace: terminate() would never come in time
        await task
    launcher.close()

    assert runner.session.status is SessionStatus.CANCELLED  # (not narrowed by the wait above)
    assert session.error is not None
    assert session.error["code"] == "cancelled"
    assert launcher.forced == []
    assert launcher.workers[0].exitcode == 0
    # One heartbeat a second while it winds down, not a flood the parent has to wade through.
    assert launcher.after_cancel.count("heartbeat") < 30, len(launcher.after_cancel)
    assert launcher.after_cancel.count("cancelled") == 1
