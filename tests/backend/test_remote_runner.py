"""The remote-runner seam with hand-written fakes of its two ports (no host, no Ray): the one follower
and the runner's re-dispatch policy, whatever the mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.adapters.operation_logs import FileOperationLogStore
from backend.domain.operations import Operation, OperationError, OperationStatus
from backend.domain.ray_cluster import JobResources
from backend.domain.remote_runs import RemoteLogLine, RemoteRun, RemoteState, RemoteStatus, RemoteTimings
from backend.services.events import EventBroker
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.remote_runner import RemoteRunner
from backend.services.session_commands import SessionCommands
from shared.contracts.host import ResultPayload, StartSession
from shared.contracts.training import ProgressUpdate
from tests.backend.fakes import STRATEGY_YAML, FakeDatasets, FixedClock

pytestmark = pytest.mark.anyio
TIMINGS = RemoteTimings(lease_s=5, poll_initial_s=0.01, poll_max_s=0.02, cancel_grace_s=5, max_retries=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class FakeRemote:
    """The RemoteBackend port in memory: each run's next status is whatever the test scripted."""

    mode: str = "host"
    lost_code: str = "fake_lost"
    statuses: dict[str, RemoteStatus] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)

    async def start(self, where: str, command: StartSession, resources: JobResources) -> RemoteRun:
        raise AssertionError("FakePlacement starts runs itself")

    async def status(self, run: RemoteRun, log_cursor: int) -> RemoteStatus:
        """The scripted status; its log lines only to a caller whose cursor is behind them."""
        status = self.statuses.get(run.run_id, RemoteStatus(RemoteState.RUNNING, log_cursor))
        if status.log_cursor <= log_cursor:
            return replace(status, log_cursor=log_cursor, logs=())
        return status

    async def stop(self, run: RemoteRun) -> None:
        self.stops.append(run.run_id)
        self.statuses[run.run_id] = RemoteStatus(RemoteState.CANCELLED)

    async def fetch_result(self, run: RemoteRun, *, max_bytes: int) -> bytes | None:
        return None

    async def acknowledge(self, run: RemoteRun) -> None:
        return None

    def describe(self, run: RemoteRun) -> str:
        return f"fake run {run.run_id}"

    def details(self, run: RemoteRun) -> dict[str, Any]:
        return {"run": run.run_id}

    def silence_error(self, run: RemoteRun, silent_s: float, reason: str, lease_s: float) -> OperationError:
        return OperationError(self.lost_code, f"silent {silent_s:.1f} s: {reason}", self.details(run))


@dataclass
class FakePlacement:
    idempotent: bool = False
    placed: list[str] = field(default_factory=list)
    lost_runs: list[tuple[str, str]] = field(default_factory=list)
    released_runs: list[str] = field(default_factory=list)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def place(self, op_id: str) -> RemoteRun | None:
        self.placed.append(op_id)
        return RemoteRun("fake://where", f"run-{len(self.placed)}")

    def released(self, run: RemoteRun) -> None:
        self.released_runs.append(run.run_id)

    def lost(self, op_id: str, run: RemoteRun, error: OperationError) -> None:
        self.lost_runs.append((op_id, run.run_id))


@dataclass
class Rig:
    ops: OperationsService
    remote: FakeRemote
    placement: FakePlacement
    runner: RemoteRunner
    logs: FileOperationLogStore

    def new_op(self) -> Operation:
        request = {"strategy_yaml": STRATEGY_YAML, "symbols": ["EURUSD"], "timeframes": ["1h"]}
        op, _ = self.ops.create(op_type="training", request=request, execution_mode="host", mode_reason="t")
        return op

    async def until(self, op_id: str, check: Any, timeout: float = 5.0) -> Operation:
        async def poll() -> Operation:
            while not check(op := self.ops.get(op_id)):
                await asyncio.sleep(0.01)
            return op

        return await asyncio.wait_for(poll(), timeout)


async def _no_pull(payload: ResultPayload) -> None:
    raise AssertionError("nothing is pulled here")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = build_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    migrate(engine)
    ops = OperationsService(
        SqlOperationRepository(engine), FixedClock(), EventBroker(), progress_interval_s=0
    )
    store = FileOperationLogStore(tmp_path / "logs")
    capture = LogCapture(store)
    remote, placement = FakeRemote(), FakePlacement()
    commands = SessionCommands(FakeDatasets(tmp_path), "http://backend.test")
    runner = RemoteRunner(ops, remote, placement, _no_pull, capture, commands, timings=TIMINGS)
    capture.install()
    await runner.start()
    try:
        yield Rig(ops, remote, placement, runner, store)
    finally:
        await runner.stop()
        capture.uninstall()


def _lost(message: str) -> RemoteStatus:
    return RemoteStatus(RemoteState.FAILED, error=OperationError("fake_lost", message), lost=True)


async def test_a_lost_run_is_placed_again_while_retries_remain_then_fails_with_the_backends_code(
    rig: Rig,
) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    first = await rig.until(op.id, lambda o: o.host_session_id == "run-1")
    assert first.status is OperationStatus.RUNNING
    assert first.host_url == "fake://where"
    rig.remote.statuses["run-1"] = _lost("the first place burned down")
    second = await rig.until(op.id, lambda o: o.host_session_id == "run-2")
    assert second.attempts == 2
    assert any("re-dispatched, retry 1 of 1" in w for w in second.warnings), second.warnings
    rig.remote.statuses["run-2"] = _lost("so did the second")
    failed = await rig.until(op.id, lambda o: o.status is OperationStatus.FAILED)
    assert failed.error is not None
    assert failed.error.code == "fake_lost"
    assert failed.error.message == "so did the second"
    assert rig.placement.placed == [op.id, op.id]
    assert rig.placement.lost_runs == [(op.id, "run-1"), (op.id, "run-2")]
    assert rig.placement.released_runs == ["run-1", "run-2"]


async def test_a_cancel_is_forwarded_once_and_the_run_s_answer_settles_it(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    await rig.until(op.id, lambda o: o.status is OperationStatus.RUNNING)
    rig.ops.request_cancel(op.id)
    assert rig.runner.cancel(op.id)
    await rig.until(op.id, lambda o: o.status is OperationStatus.CANCELLED)
    assert rig.remote.stops == ["run-1"]
    assert op.id not in rig.runner.following


async def test_the_run_s_log_lines_land_in_the_operation_s_log_once(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    await rig.until(op.id, lambda o: o.status is OperationStatus.RUNNING)
    line = RemoteLogLine(30, "[fake] a warning from far away")
    rig.remote.statuses["run-1"] = RemoteStatus(RemoteState.RUNNING, 1, (line,))
    await asyncio.sleep(0.1)  # several polls: the cursor keeps the line from being relayed again
    rig.remote.statuses["run-1"] = RemoteStatus(
        RemoteState.FAILED, 1, error=OperationError("boom", "bad data")
    )
    failed = await rig.until(op.id, lambda o: o.status is OperationStatus.FAILED)
    assert failed.error is not None
    assert failed.error.code == "boom"  # the training's own failure: no re-dispatch
    assert rig.placement.placed == [op.id]
    lines, _ = rig.logs.read(op.id, 0, 100)
    relayed = [(entry.level, entry.message) for entry in lines if entry.message.startswith("[fake]")]
    assert relayed == [("WARNING", "[fake] a warning from far away")]


async def test_a_retry_with_no_checkpoint_to_send_starts_from_scratch_and_says_so(rig: Rig) -> None:
    """No checkpoint was shipped before the loss: the remote side, given none, cannot tell a retry from a
    first run, so the claim notes it. The lost attempt's epochs leave the history (the retry trains them
    again), and the attempt, the progress and the log say it started from scratch."""
    op = rig.new_op()
    rig.runner.submit(op.id)
    await rig.until(op.id, lambda o: o.host_session_id == "run-1")
    for epoch in (1, 2, 3):
        rows = {"epoch": epoch, "train_loss": 1.0 / epoch}
        update = ProgressUpdate(percentage=epoch, phase="training", extra={"epoch_metrics": rows})
        rig.ops.report_progress(op.id, update)
    assert [row["epoch"] for row in rig.ops.get(op.id).history] == [1, 2, 3]
    rig.remote.statuses["run-1"] = _lost("lost before its first checkpoint")
    second = await rig.until(op.id, lambda o: o.host_session_id == "run-2")
    first_attempt, retry = second.attempt_log
    assert (first_attempt.outcome, first_attempt.resumed_from_epoch) == ("requeued", None)
    assert (retry.from_checkpoint, retry.resumed_from_epoch, retry.trigger) == (True, 0, "automatic")
    assert second.history == ()
    assert second.progress.message == "retrying from scratch on host fake://where"
    lines, _ = rig.logs.read(op.id, 0, 100)
    assert f"operation {op.id}: retrying from scratch on host fake://where" in [e.message for e in lines]


async def test_a_first_run_is_not_a_retry_from_scratch(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    first = await rig.until(op.id, lambda o: o.host_session_id == "run-1")
    assert first.attempt_log[-1].resumed_from_epoch is None
    assert first.progress.message == "as fake run run-1"
