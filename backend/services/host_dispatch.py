"""HostDispatcher: pending host-mode operations go to a healthy host with a free slot, oldest first.

All hosts busy → the operation waits (pending) for a slot. No healthy host → without ``require_gpu`` it
runs locally (the fallback reason lands in its warnings and its log); with it, it waits up to the lease
for a GPU host and then fails ``host_unavailable``. A host is asked to start the session first; only
when it has accepted does the operation become running, with host URL and session id written in the
same step (before anything waits on the host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.domain.attempts import ran_at
from backend.domain.hosts import census_of
from backend.domain.operations import Operation, OperationError, OperationStatus, Progress, transition
from backend.domain.ports import DatasetCatalog, HostClient, ResumeCheckpoints, TrainingRunner
from backend.errors import HostRejectedError, HostUnavailableError
from backend.services.host_registry import HostRegistry
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.session_commands import SessionCommands
from shared.trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)

OnStarted = Callable[[str, str, str], None]


@dataclass(frozen=True)
class HostTimings:
    lease_s: float = 30.0
    poll_initial_s: float = 1.0
    poll_max_s: float = 5.0
    result_pull_delay_s: float = 3.0
    cancel_grace_s: float = 15.0
    max_retries: int = 0
    sweep_interval_s: float = 5.0
    callback_max_bytes: int = 64 << 20


class HostDispatcher:
    def __init__(
        self,
        operations: OperationsService,
        registry: HostRegistry,
        client: HostClient,
        datasets: DatasetCatalog,
        fallback: TrainingRunner,
        logs: LogCapture,
        *,
        backend_url: str,
        timings: HostTimings,
        on_started: OnStarted,
        monotonic: Callable[[], float] = time.monotonic,
        checkpoints: ResumeCheckpoints | None = None,
    ) -> None:
        self._ops = operations
        self._registry = registry
        self._client = client
        self._datasets = datasets
        self._fallback = fallback
        self._logs = logs
        self._backend_url = backend_url.rstrip("/")
        self._timings = timings
        self._on_started = on_started
        self._monotonic = monotonic
        self._queue: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._excluded: dict[str, set[str]] = {}
        self._commands = SessionCommands(datasets, backend_url, checkpoints=checkpoints)
        self.in_flight: set[str] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._work(), name="host-dispatch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit(self, op_id: str) -> None:
        """Queue a pending host operation. Safe to call from any thread."""
        if self._loop is None or self._queue is None:
            raise RuntimeError("HostDispatcher.start() was not awaited")
        self._loop.call_soon_threadsafe(self._queue.put_nowait, op_id)

    def exclude(self, op_id: str, host_url: str) -> None:
        """Do not place ``op_id`` on ``host_url`` again (it was lost there)."""
        self._excluded.setdefault(op_id, set()).add(host_url)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue else 0

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            op_id = await self._queue.get()
            self.in_flight.add(op_id)
            try:
                with self._logs.capture(op_id):
                    await self.dispatch(op_id)
            except Exception:
                logger.exception("dispatch of operation %s failed", op_id)
            finally:
                self.in_flight.discard(op_id)

    async def dispatch(self, op_id: str) -> None:
        """Wait for a slot and start ``op_id`` there, or fall back / fail as the rules say."""
        waiting_since = self._monotonic()
        excluded = self._excluded.get(op_id, set())
        while True:
            op = await asyncio.to_thread(self._ops.get, op_id)
            if op.status is not OperationStatus.PENDING:
                return
            url = self._registry.place(exclude=sorted(excluded), require_gpu=op.require_gpu)
            if url is not None:
                if await self._start_on(url, op):
                    self._excluded.pop(op_id, None)
                    return
            elif not self._any_host_fits(op, excluded):
                if not op.require_gpu:
                    await asyncio.to_thread(self._fall_back, op)
                    return
                if self._monotonic() - waiting_since > self._timings.lease_s:
                    await asyncio.to_thread(self._fail_unavailable, op)
                    return
            await self._registry.wait_for_change(self._timings.poll_max_s)

    def _any_host_fits(self, op: Operation, excluded: set[str]) -> bool:
        return any(
            s.healthy and s.url not in excluded and (s.has_gpu or not op.require_gpu)
            for s in self._registry.states()
        )

    async def _start_on(self, url: str, op: Operation) -> bool:
        """True when the operation is settled (running there, failed or cancelled); False to retry."""
        try:
            command = await asyncio.to_thread(self._commands.build, op)
        except TrainkitError as exc:
            self._registry.release(url)
            await asyncio.to_thread(self._ops.fail, op.id, OperationError(exc.code, exc.message))
            return True
        try:
            view = await self._client.start(url, command)
        except HostUnavailableError as exc:
            self._registry.release(url)
            if exc.details.get("status") is None:
                self._registry.mark_down(url, exc.message)
            logger.info("operation %s not started on %s: %s", op.id, url, exc.message)
            return False
        except HostRejectedError as exc:
            self._registry.release(url)
            # The host's own code (command_not_found, invalid_config ...) says what to fix.
            details = {"host": url, "host_error": exc.details.get("host_error")}
            error = OperationError("host_rejected", exc.message, details)
            await asyncio.to_thread(self._ops.fail, op.id, error)
            return True
        self._registry.claimed(url)
        if not await asyncio.to_thread(self._claim, op.id, url, view.session_id):
            logger.info("operation %s was cancelled while its host session started; stopping it", op.id)
            with contextlib.suppress(HostUnavailableError, HostRejectedError):
                await self._client.stop(url, view.session_id)
            return True
        logger.info("operation %s runs on host %s as session %s", op.id, url, view.session_id)
        self._on_started(op.id, url, view.session_id)
        return True

    def _claim(self, op_id: str, url: str, session_id: str) -> bool:
        """pending → running with the host and session recorded in one write; False if no longer pending."""

        def change(op: Operation) -> Operation:
            if op.status is not OperationStatus.PENDING:
                return op
            running = transition(op, OperationStatus.RUNNING, self._ops.now())
            return running.with_changes(
                host_url=url,
                host_session_id=session_id,
                attempt_log=ran_at(running.attempt_log, f"host {url}"),
                attempts=op.attempts + 1,
                progress=Progress(phase="starting", message=f"on host {url}"),
            )

        op = self._ops.update(op_id, change)
        if op.status is not OperationStatus.RUNNING or op.host_session_id != session_id:
            return False
        self._ops.track(op)
        return True

    def _fall_back(self, op: Operation) -> None:
        missing = census_of(self._registry.states()).missing(require_gpu=op.require_gpu)
        if not missing:  # the only fitting hosts were tried for this operation and failed
            missing = "every host service that could take it failed this training already"
        warning = f"when the training was dispatched, {missing}; fell back to local execution"

        def change(current: Operation) -> Operation:
            if current.status is not OperationStatus.PENDING:
                return current
            return current.with_changes(
                execution_mode="local", mode_reason=warning, warnings=(*current.warnings, warning)
            )

        self._ops.update(op.id, change)
        logger.warning("operation %s: %s", op.id, warning)
        self._fallback.submit(op.id)

    def _fail_unavailable(self, op: Operation) -> None:
        missing = census_of(self._registry.states()).missing(require_gpu=True)
        if not missing:
            missing = "every GPU host service failed this training already"
        message = (
            f"this training requires a GPU and within {self._timings.lease_s:.0f} s "
            f"(MODELYARD_HOST_LEASE_S) {missing}"
            + ("" if "require_gpu" in missing else "; or drop require_gpu")
        )
        logger.error("operation %s: %s", op.id, message)
        self._ops.fail(op.id, OperationError("host_unavailable", message))
