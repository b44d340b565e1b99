"""Ray mode's RemoteRunner against a fake Jobs API: submit once, adopt a taken id, lose a silent or dead job, cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.adapters.operation_logs import FileOperationLogStore
from backend.components import ray_runner
from backend.domain.job_tokens import JobTokenKey
from backend.domain.operations import Operation, OperationStatus
from backend.domain.ray_cluster import RayJob, RayJobStatus
from backend.services.events import EventBroker
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.ray_cluster import RayClusterMonitor
from backend.services.ray_placement import RayTimings
from backend.services.remote_runner import RemoteRunner
from backend.services.session_commands import SessionCommands
from shared.contracts.host import ResultPayload
from shared.contracts.ray_jobs import JOB_TOKEN_ENV
from tests.backend.fakes import STRATEGY_YAML, FakeDatasets, FixedClock
from tests.ray.fakes import FakeRayJobs

pytestmark = pytest.mark.anyio
TIMINGS = RayTimings(poll_s=0.02, lease_s=0.3, result_grace_s=0.05, cancel_grace_s=1.0, sweep_interval_s=0.05)
KEY = JobTokenKey(b"k" * 32)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Rig:
    ops: OperationsService
    jobs: FakeRayJobs
    runner: RemoteRunner
    logs: FileOperationLogStore
    capture: LogCapture

    def new_op(self, require_gpu: bool = False) -> Operation:
        request = {"strategy_yaml": STRATEGY_YAML, "symbols": ["EURUSD"], "timeframes": ["1h"]}
        op, _ = self.ops.create(
            op_type="training",
            request=request,
            execution_mode="ray",
            mode_reason="t",
            require_gpu=require_gpu,
        )
        return op

    async def until(self, op_id: str, status: OperationStatus, timeout: float = 5.0) -> Operation:
        async def poll() -> Operation:
            while True:
                op = self.ops.get(op_id)
                if op.status is status:
                    return op
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(poll(), timeout)


def build_rig(tmp_path: Path, jobs: FakeRayJobs, timings: RayTimings = TIMINGS) -> Rig:
    engine = build_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    migrate(engine)
    ops = OperationsService(
        SqlOperationRepository(engine), FixedClock(), EventBroker(), progress_interval_s=0
    )
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "EURUSD_1h.csv").write_text("timestamp,open,high,low,close,volume\n")
    store = FileOperationLogStore(tmp_path / "logs")
    monitor = RayClusterMonitor(jobs, FixedClock(), interval_s=60)
    capture = LogCapture(store)
    runner = ray_runner(
        ops, monitor, _never_pulled, capture, KEY, SessionCommands(FakeDatasets(data), "http://backend.test"),
        backend_url="http://backend.test", entrypoint="modelyard", timings=timings,
    )  # fmt: skip
    return Rig(ops, jobs, runner, store, capture)


async def _never_pulled(payload: ResultPayload) -> None:
    raise AssertionError(f"a Ray job posts its result itself; {payload.operation_id}'s was pulled")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = build_rig(tmp_path, FakeRayJobs())
    made.capture.install()
    await made.runner.start()
    try:
        yield made
    finally:
        await made.runner.stop()
        made.capture.uninstall()


async def test_a_job_is_submitted_once_with_a_token_scoped_to_its_operation(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    running = await rig.until(op.id, OperationStatus.RUNNING)
    assert running.host_session_id == op.id
    assert running.host_url == rig.jobs.address
    [(submission_id, entrypoint, env, resources)] = rig.jobs.submissions
    assert submission_id == op.id
    assert entrypoint == (
        f"modelyard ray-job --backend-url http://backend.test --operation-id {op.id} "
        "--checkpoint-every-epochs 1 --checkpoint-min-interval 30"
    )
    token = env[JOB_TOKEN_ENV]
    KEY.verify(token, op.id, rig.ops.now())
    assert "k" * 8 not in token  # the key itself never travels
    assert resources.cpus == 1.0
    assert resources.gpus == 0.0


async def test_a_submission_id_taken_already_is_adopted_not_submitted_again(rig: Rig) -> None:
    op = rig.new_op()
    rig.jobs.states[op.id] = RayJob(op.id, RayJobStatus.RUNNING)  # submitted before a crash
    rig.runner.submit(op.id)
    await rig.until(op.id, OperationStatus.RUNNING)
    assert rig.jobs.submissions == []


async def test_a_job_that_fails_without_a_result_is_ray_job_lost_with_its_log_tail(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    await rig.until(op.id, OperationStatus.RUNNING)
    _reported(rig, op.id)
    rig.jobs.log_text[op.id] = "Traceback (most recent call last):\nOSError: the disk is gone\n"
    rig.jobs.finish(op.id, RayJobStatus.FAILED, "Job entrypoint command failed with exit code 1")
    failed = await rig.until(op.id, OperationStatus.FAILED)
    assert failed.error is not None
    assert failed.error.code == "ray_job_lost"
    assert "exit code 1" in failed.error.message
    assert "OSError" in failed.error.details["log_tail"]
    lines, _ = rig.logs.read(op.id, 0, 100)
    assert any("OSError" in line.message for line in lines)


async def _resubmitted(rig: Rig, op_id: str) -> Operation:
    """The operation once its retry's job (``<op>-attempt-2``) is submitted."""

    async def poll() -> Operation:
        while (current := rig.ops.get(op_id)).host_session_id != f"{op_id}-attempt-2":
            await asyncio.sleep(0.01)
        return current

    return await asyncio.wait_for(poll(), 5)


def _reported(rig: Rig, op_id: str) -> None:
    """The job fetched its spec (what the spec route records): it reached the backend."""
    rig.ops.update(op_id, lambda op: op.with_changes(heartbeat_at=rig.ops.now()))


@asynccontextmanager
async def _running_with_one_retry(tmp_path: Path) -> AsyncIterator[tuple[Rig, Operation]]:
    """A runner allowing one retry, and an operation of it running as its first job."""
    rig = build_rig(tmp_path, FakeRayJobs(), dataclasses.replace(TIMINGS, max_retries=1))
    await rig.runner.start()
    try:
        op = rig.new_op()
        rig.runner.submit(op.id)
        await rig.until(op.id, OperationStatus.RUNNING)
        yield rig, op
    finally:
        await rig.runner.stop()


async def test_a_job_that_fails_by_itself_before_reaching_the_backend_is_not_retried(tmp_path: Path) -> None:
    """An entrypoint that cannot import (a broken install or runtime env) fails the same way each time."""
    async with _running_with_one_retry(tmp_path) as (rig, op):
        rig.jobs.log_text[op.id] = "ModuleNotFoundError: No module named 'backend'\n"
        rig.jobs.states[op.id] = RayJob(
            op.id,
            RayJobStatus.FAILED,
            "Job entrypoint command failed with exit code 1, last available logs: ...",
            exit_code=1,
            error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
        )
        failed = await rig.until(op.id, OperationStatus.FAILED)
        assert failed.error is not None
        assert failed.error.code == "ray_job_start_failed"
        assert (
            "failed before it reached the backend: its entrypoint exited with code 1" in failed.error.message
        )
        assert "Not retried" in failed.error.message
        assert failed.error.details["exit_code"] == 1
        assert "ModuleNotFoundError" in failed.error.details["log_tail"]
        assert [s[0] for s in rig.jobs.submissions] == [op.id]  # the retry it was allowed is not spent
        assert [a.outcome for a in failed.attempt_log] == ["failed"]


@pytest.mark.parametrize(
    ("job", "reported"),
    [
        # It had reached the backend: whatever ended it later is a loss.
        (RayJob("", RayJobStatus.FAILED, "Job entrypoint command failed with exit code 1", 1), True),
        # Killed by a signal while it started (OOM, a kill): direct, or as a shell reports it.
        (RayJob("", RayJobStatus.FAILED, "Job entrypoint command failed with exit code -9", -9), False),
        (RayJob("", RayJobStatus.FAILED, "Job entrypoint command failed with exit code 137", 137), False),
        # Its node died under it.
        (
            RayJob(
                "", RayJobStatus.FAILED, "Job supervisor actor died: ...", None, "JOB_SUPERVISOR_ACTOR_DIED"
            ),
            False,
        ),
    ],
    ids=["reported-then-exit-1", "sigkill", "shell-137", "node-died"],
)
async def test_a_job_lost_to_the_infrastructure_is_retried_even_before_it_reported(
    tmp_path: Path, job: RayJob, reported: bool
) -> None:
    async with _running_with_one_retry(tmp_path) as (rig, op):
        if reported:
            _reported(rig, op.id)
        rig.jobs.states[op.id] = dataclasses.replace(job, submission_id=op.id)

        retried = await _resubmitted(rig, op.id)
        assert retried.attempt_log[0].error_code == "ray_job_lost"


async def test_a_lost_job_is_submitted_again_under_a_new_id_while_max_retries_allows(tmp_path: Path) -> None:
    async with _running_with_one_retry(tmp_path) as (rig, op):
        rig.jobs.finish(op.id, RayJobStatus.FAILED, "the driver was killed")

        retried = await _resubmitted(rig, op.id)
        assert [s[0] for s in rig.jobs.submissions] == [op.id, f"{op.id}-attempt-2"]
        assert [a.outcome for a in retried.attempt_log] == ["requeued", "running"]
        assert retried.attempt_log[0].error_code == "ray_job_lost"
        assert (retried.attempt_log[1].trigger, retried.attempt_log[1].from_checkpoint) == ("automatic", True)
        rig.jobs.finish(f"{op.id}-attempt-2", RayJobStatus.FAILED, "again")
        failed = await rig.until(op.id, OperationStatus.FAILED)  # the one retry is used up
        assert failed.error is not None
        assert failed.error.code == "ray_job_lost"
        assert len(rig.jobs.submissions) == 2


async def test_a_cluster_silent_past_the_lease_loses_the_job(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    await rig.until(op.id, OperationStatus.RUNNING)
    rig.jobs.down = True
    failed = await rig.until(op.id, OperationStatus.FAILED)
    assert failed.error is not None
    assert failed.error.code == "ray_job_lost"
    assert "MODELYARD_RAY_LEASE_S" in failed.error.message


async def test_cancel_stops_the_job_and_records_cancelled(rig: Rig) -> None:
    op = rig.new_op()
    rig.runner.submit(op.id)
    await rig.until(op.id, OperationStatus.RUNNING)
    rig.ops.request_cancel(op.id)
    assert rig.runner.cancel(op.id)
    await rig.until(op.id, OperationStatus.CANCELLED)
    assert rig.jobs.stops == [op.id]


async def test_missing_data_fails_the_operation_before_anything_is_submitted(
    rig: Rig, tmp_path: Path
) -> None:
    (tmp_path / "data" / "EURUSD_1h.csv").unlink()
    op = rig.new_op()
    rig.runner.submit(op.id)
    failed = await rig.until(op.id, OperationStatus.FAILED)
    assert failed.error is not None
    assert failed.error.code == "data_not_found"
    assert rig.jobs.submissions == []


async def test_a_restarted_runner_re_attaches_to_running_jobs_without_submitting(tmp_path: Path) -> None:
    jobs = FakeRayJobs()
    first = build_rig(tmp_path, jobs)
    await first.runner.start()
    op = first.new_op()
    first.runner.submit(op.id)
    await first.until(op.id, OperationStatus.RUNNING)
    await first.runner.stop()
    second = build_rig(tmp_path, jobs)
    # The restarted backend is a new instance: its lease sweep adopts the dead one's operations first.
    assert second.ops.adopt(second.ops.get(op.id))
    await second.runner.start()
    try:
        assert op.id in second.runner.following
        jobs.finish(op.id, RayJobStatus.FAILED, "node lost")
        failed = await second.until(op.id, OperationStatus.FAILED)
        assert failed.error is not None
        assert failed.error.code == "ray_job_lost"
        assert len(jobs.submissions) == 1
    finally:
        await second.runner.stop()
