"""RayJobRunner: the TrainingRunner of ray mode. One Ray job per operation, ``submission_id`` = its id.

Submit first, then record: an operation becomes running (host_url = the Jobs API address,
host_session_id = the submission id) only once Ray has the job, and a submit that finds its id taken
adopts that job instead, so a backend that died between the two never submits twice. The job reports
progress and delivers its result over HTTP itself (``backend.api.ray_jobs``); the follower here mirrors
the job's log into the operation's log, forwards a cancel as ``stop_job``, and fails the operation
``ray_job_lost`` when the job ends without a result or the cluster stays silent past the lease.
At start (and every sweep) running ray operations nobody follows are re-attached by submission id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from backend.domain.job_tokens import JobTokenKey
from backend.domain.operations import (
    ACTIVE_STATUSES,
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    Progress,
    transition,
)
from backend.domain.ray_cluster import JobResources, RayJob, RayJobStatus
from backend.errors import IllegalTransitionError, RayRejectedError, RayUnavailableError
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.ray_cluster import RayClusterMonitor
from backend.services.session_commands import SessionCommands
from shared.contracts.ray_jobs import JOB_TOKEN_ENV
from shared.contracts.training import TrainingRequest
from shared.trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)
#: The job's own log lines land in the operation's log under this logger name.
job_log = logging.getLogger("backend.ray_job")
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class RayTimings:
    poll_s: float = 1.0
    lease_s: float = 30.0
    #: After the job ended: how long its result (posted before it exits) may take to be recorded.
    result_grace_s: float = 3.0
    cancel_grace_s: float = 15.0
    sweep_interval_s: float = 5.0
    token_ttl_s: float = 86400.0


class RayJobRunner:
    def __init__(
        self,
        operations: OperationsService,
        monitor: RayClusterMonitor,
        logs: LogCapture,
        key: JobTokenKey,
        commands: SessionCommands,
        *,
        backend_url: str,
        entrypoint: str,
        timings: RayTimings,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ops = operations
        self.monitor = monitor
        self._jobs = monitor.jobs
        self._logs = logs
        self._key = key
        self.commands = commands
        self._backend_url = backend_url.rstrip("/")
        self._entrypoint = entrypoint
        self._t = timings
        self._monotonic = monotonic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # --- TrainingRunner ------------------------------------------------------------------------

    def submit(self, op_id: str) -> None:
        """Submit ``op_id`` as a Ray job and follow it (on the event loop). Safe from any thread."""
        if self._loop is None:
            raise RuntimeError("RayJobRunner.start() was not awaited")
        self._loop.call_soon_threadsafe(self._spawn, op_id, True)

    def cancel(self, op_id: str) -> bool:
        event = self._wake.get(op_id)
        if event is None or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(event.set)
        return True

    @property
    def queue_depth(self) -> int:
        return 0  # Ray queues the jobs itself

    @property
    def following(self) -> list[str]:
        return [op_id for op_id, task in self._tasks.items() if not task.done()]

    def job_token(self, op_id: str) -> str:
        return self._key.mint(op_id, self._ops.now() + timedelta(seconds=self._t.token_ttl_s))

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.monitor.start()
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="ray-watchdog")

    async def stop(self) -> None:
        """Stop following; the jobs keep running on the cluster and are re-attached at the next start."""
        tasks = list(self._tasks.values()) + ([self._sweeper] if self._sweeper else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.monitor.stop()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._t.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                logger.exception("ray watchdog sweep failed")

    async def sweep(self) -> list[str]:
        """Follow every running ray operation this backend owns and nobody here follows (after a restart,
        or adopted from a backend that died); their ids. Another live backend's stay with it."""
        active, _ = await asyncio.to_thread(
            self._ops.list_operations, OperationFilter(statuses=tuple(sorted(ACTIVE_STATUSES))), limit=10_000
        )
        adopted = []
        for op in active:
            if op.execution_mode != "ray" or op.status is OperationStatus.PENDING or op.id in self.following:
                continue
            if self._ops.owned_elsewhere(op):
                continue
            adopted.append(op.id)
            logger.info("re-attaching to Ray job %s", op.host_session_id or op.id)
            self._ops.track(op)
            self._spawn(op.id, False)
        return adopted

    def _spawn(self, op_id: str, dispatch: bool) -> None:
        task = self._tasks.get(op_id)
        if task is not None and not task.done():
            return
        self._wake[op_id] = asyncio.Event()
        self._tasks[op_id] = asyncio.get_running_loop().create_task(
            self._run(op_id, dispatch), name=f"ray-{op_id}"
        )

    async def _run(self, op_id: str, dispatch: bool) -> None:
        try:
            with self._logs.capture(op_id):
                if dispatch and not await self._dispatch(op_id):
                    return
                await self._follow(op_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("following Ray job %s failed; the watchdog will re-attach", op_id)
        finally:
            self._wake.pop(op_id, None)

    # --- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self, op_id: str) -> bool:
        """Submit the job and mark the operation running; False when it is settled otherwise."""
        op = await asyncio.to_thread(self._ops.get, op_id)
        if op.status is not OperationStatus.PENDING:
            return False
        try:
            request = TrainingRequest.model_validate(op.request)
        except ValueError as exc:
            await self._fail(op_id, OperationError("invalid_request", str(exc)))
            return False
        try:
            await asyncio.to_thread(self.commands.build, op)  # the data it needs exists and can travel
        except TrainkitError as exc:
            await self._fail(op_id, OperationError(exc.code, exc.message, dict(exc.details)))
            return False
        resources = resources_of(request, op.require_gpu)
        refusal = self.monitor.state().refusal(resources) if self.monitor.is_available() else None
        if refusal is not None:
            await self._fail(
                op_id, OperationError("ray_resources_unavailable", refusal, {"address": self._jobs.address})
            )
            return False
        waiting_since = self._monotonic()
        while True:
            try:
                await asyncio.to_thread(self._submit, op, resources)
                break
            except RayRejectedError as exc:
                if exc.details.get("exists"):
                    logger.info("Ray already has job %s (submitted before a restart): adopting it", op_id)
                    break
                await self._fail(
                    op_id, OperationError("ray_rejected", exc.message, {"address": self._jobs.address})
                )
                return False
            except RayUnavailableError as exc:
                if self._monotonic() - waiting_since > self._t.lease_s:
                    message = (
                        f"the Ray cluster did not take the job within {self._t.lease_s:.0f} s "
                        f"(MODELYARD_RAY_LEASE_S): {exc.message}; start it (`ray start --head`) or fix "
                        "MODELYARD_RAY_ADDRESS"
                    )
                    await self._fail(
                        op_id, OperationError("ray_unavailable", message, {"address": self._jobs.address})
                    )
                    return False
                logger.warning("submitting %s to Ray failed, retrying: %s", op_id, exc.message)
                await asyncio.sleep(self._t.poll_s)
        if not await asyncio.to_thread(self._claim, op_id):
            logger.info("operation %s was cancelled while its Ray job was submitted; stopping it", op_id)
            with contextlib.suppress(RayUnavailableError, RayRejectedError):
                await asyncio.to_thread(self._jobs.stop, op_id)
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.mark_cancelled, op_id)
            return False
        logger.info("operation %s runs as Ray job %s on %s", op_id, op_id, self._jobs.address)
        return True

    def _submit(self, op: Operation, resources: JobResources) -> None:
        entrypoint = f"{self._entrypoint} ray-job --backend-url {self._backend_url} --operation-id {op.id}"
        self._jobs.submit(op.id, entrypoint, env={JOB_TOKEN_ENV: self.job_token(op.id)}, resources=resources)

    def _claim(self, op_id: str) -> bool:
        def change(op: Operation) -> Operation:
            if op.status is not OperationStatus.PENDING:
                return op
            running = transition(op, OperationStatus.RUNNING, self._ops.now())
            return running.with_changes(
                host_url=self._jobs.address,
                host_session_id=op_id,
                attempts=op.attempts + 1,
                progress=Progress(phase="starting", message=f"Ray job on {self._jobs.address}"),
            )

        op = self._ops.update(op_id, change)
        if op.status is not OperationStatus.RUNNING:
            return False
        self._ops.track(op)
        return True

    # --- follow --------------------------------------------------------------------------------

    async def _follow(self, op_id: str) -> None:
        wake = self._wake[op_id]
        last_answer = self._monotonic()
        cancel_sent: float | None = None
        ended_at: float | None = None
        log_seen = 0
        while True:
            op = await asyncio.to_thread(self._ops.get, op_id)
            if op.is_terminal:
                await self._tail_log(op_id, log_seen)
                return
            if op.status is OperationStatus.CANCELLING and cancel_sent is None:
                cancel_sent = self._monotonic()
                with contextlib.suppress(RayUnavailableError, RayRejectedError):
                    await asyncio.to_thread(self._jobs.stop, op_id)
                    logger.info("asked Ray to stop job %s", op_id)
            try:
                job = await asyncio.to_thread(self._jobs.job, op_id)
                log_seen = await self._tail_log(op_id, log_seen)
            except (RayUnavailableError, RayRejectedError) as exc:
                silent = self._monotonic() - last_answer
                if silent > self._t.lease_s:
                    message = (
                        f"the Ray cluster at {self._jobs.address} did not answer for {silent:.0f} s, longer "
                        f"than the lease of {self._t.lease_s:.0f} s (MODELYARD_RAY_LEASE_S): {exc.message}"
                    )
                    await self._lost(op, message)
                    return
                logger.warning("Ray silent for %.1f s about job %s: %s", silent, op_id, exc.message)
                await _sleep(wake, self._t.poll_s)
                continue
            last_answer = self._monotonic()
            if job is None:
                await self._lost(
                    op, f"the Ray cluster at {self._jobs.address} has no job {op_id} (restarted?)"
                )
                return
            if job.finished:
                ended_at = ended_at or self._monotonic()
                if await self._ended(op, job, log_seen, self._monotonic() - ended_at):
                    return
            if cancel_sent is not None and self._monotonic() - cancel_sent > self._t.cancel_grace_s:
                logger.warning(
                    "Ray did not stop job %s within %.0f s; recording it as cancelled",
                    op_id,
                    self._t.cancel_grace_s,
                )
                with contextlib.suppress(IllegalTransitionError):
                    await asyncio.to_thread(self._ops.mark_cancelled, op_id)
                return
            await _sleep(wake, min(self._t.poll_s, 0.2) if job.finished else self._t.poll_s)

    async def _ended(self, op: Operation, job: RayJob, log_seen: int, since: float) -> bool:
        """The job is over while its operation is not: settle it. True when settled."""
        if op.status is OperationStatus.CANCELLING:
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.mark_cancelled, op.id)
            logger.info("Ray job %s %s", op.id, job.status.value.lower())
            return True
        if since < self._t.result_grace_s:
            return False  # the result (or the job's own failure) is still being recorded
        reason = {
            RayJobStatus.SUCCEEDED: "the job exited without delivering its result",
            RayJobStatus.STOPPED: "the job was stopped outside modelyard",
        }.get(job.status, "the job failed without a result")
        log = await asyncio.to_thread(self._log_tail, op.id)
        message = f"Ray job {op.id} {job.status.value}: {reason}; Ray says: {job.message or 'nothing'}"
        await self._lost(op, message, log_tail=log)
        return True

    async def _lost(self, op: Operation, message: str, *, log_tail: str = "") -> None:
        if op.status is OperationStatus.CANCELLING:
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.mark_cancelled, op.id)
            return
        details = {"address": self._jobs.address, "submission_id": op.id}
        if log_tail:
            details["log_tail"] = log_tail
        logger.error("operation %s: %s", op.id, message)
        await self._fail(op.id, OperationError("ray_job_lost", message, details))

    async def _fail(self, op_id: str, error: OperationError) -> None:
        with contextlib.suppress(IllegalTransitionError):
            await asyncio.to_thread(self._ops.fail, op_id, error)

    def _log_tail(self, op_id: str) -> str:
        try:
            return self._jobs.logs(op_id)[-LOG_TAIL_CHARS:]
        except (RayUnavailableError, RayRejectedError):
            return ""

    async def _tail_log(self, op_id: str, seen: int) -> int:
        """Copy the job's new complete log lines into the operation's log; the new offset."""
        try:
            text = await asyncio.to_thread(self._jobs.logs, op_id)
        except (RayUnavailableError, RayRejectedError):
            return seen
        end = text.rfind("\n") + 1
        for line in text[seen:end].splitlines():
            if line.strip():
                job_log.info("%s", line)
        return max(seen, end)


def resources_of(request: TrainingRequest, require_gpu: bool) -> JobResources:
    wanted = request.resources
    return JobResources(
        cpus=wanted.cpus if wanted else 1.0,
        gpus=1.0 if require_gpu else 0.0,
        memory_bytes=wanted.memory_mb * 2**20 if wanted and wanted.memory_mb else None,
    )


async def _sleep(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    event.clear()
