"""RayJobRuns: the RemoteBackend of ray mode, one Ray job per run over the RayJobs port. The first
attempt's ``submission_id`` is the operation id, a re-submission's ``<operation id>-attempt-<n>`` (Ray keeps
the ended job under the old id). The job posts its progress, its training checkpoints and its result
itself (``backend.api.ray_jobs``, ``backend.api.checkpoints``): a job that ends while its operation is
still open ended without one, and is lost."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shlex
from collections.abc import Callable
from typing import Any

from backend.domain.job_tokens import ATTEMPT
from backend.domain.operations import OperationError
from backend.domain.ports import RayJobs
from backend.domain.ray_cluster import JobResources, RayJob, RayJobStatus
from backend.domain.remote_runs import RemoteLogLine, RemoteRun, RemoteState, RemoteStatus
from backend.errors import RayError, RayRejectedError
from shared.contracts.host import StartSession
from shared.contracts.ray_jobs import JOB_TOKEN_ENV

logger = logging.getLogger(__name__)
LOG_TAIL_CHARS = 2000
#: The most jobs one operation is submitted as (the first attempt and max_retries re-submissions: at most
#: 1 + 10, with room for a job submitted just before a backend restart).
MAX_SUBMISSIONS = 16


#: A job that failed by itself before it reached the backend (see ``RemoteStatus.start_failure``).
START_FAILED = "ray_job_start_failed"


class RayJobRuns:
    mode = "ray"
    lost_code = "ray_job_lost"

    def __init__(
        self,
        jobs: RayJobs,
        *,
        backend_url: str,
        entrypoint: str,
        mint_token: Callable[[str], str],
        commands_dir: str | None = None,
        checkpoints: tuple[int, float] = (1, 30.0),
        result_grace_s: float = 3.0,
    ) -> None:
        self.jobs = jobs
        self._backend_url = backend_url.rstrip("/")
        self._entrypoint = entrypoint
        #: Where the workers keep their command templates (a command runs only from its machine's own).
        self._commands_dir = commands_dir
        self._mint = mint_token
        #: Every how many epochs, at most how often (s), the job writes (and ships) a training checkpoint.
        self._checkpoints = checkpoints
        #: After the job ended: how long its result (posted before it exits) may take to be recorded.
        self._result_grace_s = result_grace_s

    async def start(self, where: str, command: StartSession, resources: JobResources) -> RemoteRun:
        op_id = command.operation_id
        for attempt in range(1, MAX_SUBMISSIONS + 1):
            submission_id = op_id if attempt == 1 else f"{op_id}{ATTEMPT}{attempt}"
            # The job's credential reaches this operation's routes only, and only while it runs as this
            # submission: runtime_env shows in Ray's dashboard.
            env = {JOB_TOKEN_ENV: self._mint(submission_id)}
            entrypoint = self._entrypoint_of(op_id, submission_id)
            try:
                await asyncio.to_thread(
                    self.jobs.submit, submission_id, entrypoint, env=env, resources=resources
                )
            except RayRejectedError as exc:
                if not exc.details.get("exists"):
                    raise
                existing = await asyncio.to_thread(self.jobs.job, submission_id)
                if existing is not None and existing.finished:
                    continue  # an earlier attempt's job, lost: this attempt is a new one
                logger.info("Ray already has job %s (submitted before a restart): adopting it", submission_id)
            return RemoteRun(self.jobs.address, submission_id)
        raise RayRejectedError(
            f"operation {op_id} has had {MAX_SUBMISSIONS} Ray jobs already; not submitting another",
            operation_id=op_id,
        )

    def _entrypoint_of(self, op_id: str, submission_id: str) -> str:
        every, interval = self._checkpoints
        entrypoint = (
            f"{self._entrypoint} ray-job --backend-url {self._backend_url} --operation-id {op_id} "
            f"--checkpoint-every-epochs {every} --checkpoint-min-interval {interval:g}"
        )
        if submission_id != op_id:
            entrypoint += f" --submission-id {submission_id}"
        if self._commands_dir:
            entrypoint += f" --commands-dir {shlex.quote(self._commands_dir)}"
        return entrypoint

    async def status(self, run: RemoteRun, log_cursor: int) -> RemoteStatus:
        try:
            job = await asyncio.to_thread(self.jobs.job, run.run_id)
        except RayError as exc:
            return RemoteStatus(RemoteState.SILENT, log_cursor, reason=exc.message)
        if job is None:
            message = f"the Ray cluster at {run.where} has no job {run.run_id} (restarted?)"
            return self._lost(run, log_cursor, (), message, settle_after_s=0.0)
        try:
            text = await asyncio.to_thread(self.jobs.logs, run.run_id)
        except RayError:
            text = ""
        cursor, lines = _complete_lines(text, log_cursor)
        if not job.finished:
            return RemoteStatus(RemoteState.RUNNING, cursor, lines)
        # Its result (or its own failure), posted before it exited, may still be on its way: a grace.
        lost = self._lost(run, cursor, lines, _ended(job), self._result_grace_s, text[-LOG_TAIL_CHARS:])
        own = job.own_failure()
        if own is None or lost.error is None:
            return lost
        message = (
            f"Ray job {job.submission_id} failed before it reached the backend: {own}; Ray says: "
            f"{job.message or 'nothing'}. Not retried: a job that fails by itself before it starts (its "
            "install or runtime env on the workers, MODELYARD_RAY_ENTRYPOINT, MODELYARD_PUBLIC_URL as the "
            "workers see it) fails the same way again; fix that, then retry the operation "
            "(POST /api/v1/operations/{id}/retry, `modelyard ops retry`)"
        )
        details = {**lost.error.details, "exit_code": job.exit_code, "ray_error_type": job.error_type}
        return dataclasses.replace(lost, start_failure=OperationError(START_FAILED, message, details))

    def _lost(
        self,
        run: RemoteRun,
        cursor: int,
        lines: tuple[RemoteLogLine, ...],
        message: str,
        settle_after_s: float,
        log_tail: str = "",
    ) -> RemoteStatus:
        details = self.details(run)
        if log_tail:
            details["log_tail"] = log_tail
        error = OperationError("ray_job_lost", message, details)
        return RemoteStatus(
            RemoteState.FAILED, cursor, lines, error=error, lost=True, settle_after_s=settle_after_s
        )

    async def stop(self, run: RemoteRun) -> None:
        await asyncio.to_thread(self.jobs.stop, run.run_id)

    async def fetch_result(self, run: RemoteRun, *, max_bytes: int) -> bytes | None:
        return None  # the job posts its result itself; the backend cannot reach into a Ray worker

    async def acknowledge(self, run: RemoteRun) -> None:
        return None

    def describe(self, run: RemoteRun) -> str:
        return f"Ray job {run.run_id} on {run.where}"

    def details(self, run: RemoteRun) -> dict[str, Any]:
        return {"address": run.where, "submission_id": run.run_id}

    def silence_error(self, run: RemoteRun, silent_s: float, reason: str, lease_s: float) -> OperationError:
        message = (
            f"the Ray cluster at {run.where} did not answer for {silent_s:.0f} s, longer than the lease of "
            f"{lease_s:.0f} s (MODELYARD_RAY_LEASE_S): {reason}"
        )
        return OperationError("ray_job_lost", message, self.details(run))


def _ended(job: RayJob) -> str:
    reason = {
        RayJobStatus.SUCCEEDED: "the job exited without delivering its result",
        RayJobStatus.STOPPED: "the job was stopped outside modelyard",
    }.get(job.status, "the job failed without a result")
    return f"Ray job {job.submission_id} {job.status.value}: {reason}; Ray says: {job.message or 'nothing'}"


def _complete_lines(text: str, cursor: int) -> tuple[int, tuple[RemoteLogLine, ...]]:
    """The job's complete log lines after ``cursor`` (a character offset), and the new offset."""
    end = text.rfind("\n") + 1
    lines = tuple(RemoteLogLine(logging.INFO, line) for line in text[cursor:end].splitlines() if line.strip())
    return max(cursor, end), lines
