"""RemoteRunner: the TrainingRunner of a remote execution mode (host, Ray), whatever the placement.

One task per operation: the mode's Placement starts it somewhere, the runner records it running (host
URL or Ray address and the session or submission id, written in the same step, before anything waits on
the remote side), then one RemoteFollower follows it until it settles. What is common to every remote
mode lives here: ownership (only this backend's operations are followed), the watchdog sweep that
re-attaches running operations nobody follows (after a restart, adopted from a dead backend), and the
re-dispatch policy of a lost run (``_after_loss``): fail it ``host_lost`` / ``ray_job_lost``, or, while
``max_retries`` allows, back to pending and placed again (another host, else local).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from backend.domain.attempts import automatic_retries, ran_at, resumes_from_checkpoint, retries_allowed
from backend.domain.operations import (
    ACTIVE_STATUSES,
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    Progress,
    transition,
)
from backend.domain.ports import RemoteBackend
from backend.domain.remote_runs import RemoteRun, RemoteTimings
from backend.errors import BackendError, IllegalTransitionError
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.progress import note_started_from_scratch, retrying_message
from backend.services.remote_follower import Ingest, RemoteFollower
from backend.services.session_commands import SessionCommands

logger = logging.getLogger(__name__)


class Placement(Protocol):
    """How one remote mode chooses where an operation runs and starts it there."""

    @property
    def idempotent(self) -> bool:
        """Placing an operation twice never runs it twice (Ray: the submission id is the operation id),
        so a pending operation found after a restart is simply placed again."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def place(self, op_id: str) -> RemoteRun | None:
        """Start the pending operation somewhere; None when it is settled otherwise (failed, fell back
        to another mode, no longer pending)."""
        ...

    def released(self, run: RemoteRun) -> None:
        """Following ``run`` ended: whatever it held there is free again."""
        ...

    def lost(self, op_id: str, run: RemoteRun, error: OperationError) -> None:
        """``run`` of ``op_id`` was lost: avoid its place (for this operation, or for every one)."""
        ...


class RemoteRunner:
    def __init__(
        self,
        operations: OperationsService,
        backend: RemoteBackend,
        placement: Placement,
        ingest: Ingest,
        logs: LogCapture,
        commands: SessionCommands,
        *,
        timings: RemoteTimings,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ops = operations
        self.backend = backend
        self.placement = placement
        self._ingest = ingest
        self._logs = logs
        #: What a run needs to start (request, data files); the Ray job routes serve it too.
        self.commands = commands
        self._t = timings
        self._monotonic = monotonic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._placing: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        operations.on_terminal(self._settled)

    # --- TrainingRunner ------------------------------------------------------------------------

    def submit(self, op_id: str) -> None:
        """Place ``op_id`` and follow it (on the event loop). Safe to call from any thread."""
        if self._loop is None:
            raise RuntimeError(f"the {self.backend.mode} runner's start() was not awaited")
        self._loop.call_soon_threadsafe(self._spawn, op_id, None)

    def cancel(self, op_id: str) -> bool:
        """Wake the operation's follower: it forwards the stop and waits for the answer."""
        return self._wake_follower(op_id)

    def _settled(self, op: Operation) -> None:
        """An operation settled in this process (its result ingested, a cancel answered): its follower,
        if it has one here, finishes now and frees its place (a host's slot) for the next operation,
        rather than at its next poll, seconds later on a long run. Any thread."""
        self._wake_follower(op.id)

    def _wake_follower(self, op_id: str) -> bool:
        event = self._wake.get(op_id)
        if event is None or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(event.set)
        return True

    @property
    def queue_depth(self) -> int:
        return len(self._placing)

    @property
    def dispatching(self) -> frozenset[str]:
        """The operations being placed, or waiting for a free place."""
        return frozenset(self._placing)

    @property
    def following(self) -> list[str]:
        return [
            op_id for op_id, task in self._tasks.items() if not task.done() and op_id not in self._placing
        ]

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.placement.start()
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"{self.backend.mode}-watchdog")

    async def stop(self) -> None:
        """Stop following; remote runs keep running and are re-attached at the next start."""
        tasks = [*self._tasks.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.placement.stop()

    # --- the watchdog --------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._t.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                logger.exception("%s watchdog sweep failed", self.backend.mode)

    async def sweep(self) -> list[str]:
        """Re-attach every active operation of this mode that this backend owns and nobody here follows
        (after a restart, or adopted from a backend that died); their ids. Another live backend's
        operations stay with it."""
        active, _ = await asyncio.to_thread(
            self._ops.list_operations, OperationFilter(statuses=tuple(sorted(ACTIVE_STATUSES))), limit=10_000
        )
        adopted = []
        for op in active:
            if op.execution_mode != self.backend.mode or self._busy(op.id) or self._ops.owned_elsewhere(op):
                continue
            if op.status is OperationStatus.PENDING and self.placement.idempotent:
                continue  # the start-up re-queue places it again, and placing twice runs it once
            adopted.append(op.id)
            if op.status is not OperationStatus.PENDING and op.host_url and op.host_session_id:
                run = RemoteRun(op.host_url, op.host_session_id)
                logger.info("re-attaching to %s for %s", self.backend.describe(run), op.id)
                self._ops.track(op)
                self._spawn(op.id, run)
            else:  # it may have started somewhere nobody recorded: lost, like a silent one
                error = OperationError(
                    self.backend.lost_code, "the backend stopped while dispatching this training"
                )
                if await self._after_loss(op.id, None, error):
                    self._spawn(op.id, None)
        return adopted

    def _busy(self, op_id: str) -> bool:
        task = self._tasks.get(op_id)
        return task is not None and not task.done()

    # --- one operation -------------------------------------------------------------------------

    def _spawn(self, op_id: str, run: RemoteRun | None) -> None:
        """Place (``run`` None) and follow ``op_id``, or follow ``run``; no-op while a task has it."""
        if self._busy(op_id):
            return
        self._wake[op_id] = asyncio.Event()
        self._tasks[op_id] = asyncio.get_running_loop().create_task(
            self._run(op_id, run), name=f"{self.backend.mode}-{op_id}"
        )

    async def _run(self, op_id: str, run: RemoteRun | None) -> None:
        try:
            with self._logs.capture(op_id):
                while True:
                    started_now = run is None
                    if run is None:
                        run = await self._place(op_id)
                        if run is None:
                            return
                    lost = await self._follow(op_id, run, started_now=started_now)
                    if lost is None or not await self._after_loss(op_id, run, lost):
                        return
                    run = None
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("following operation %s failed; the watchdog will re-attach", op_id)
        finally:
            self._wake.pop(op_id, None)
            self._placing.discard(op_id)
            if self._tasks.get(op_id) is asyncio.current_task():
                del self._tasks[op_id]

    async def _place(self, op_id: str) -> RemoteRun | None:
        self._placing.add(op_id)
        try:
            run = await self.placement.place(op_id)
        finally:
            self._placing.discard(op_id)
        if run is None:
            return None
        # A retry that was to resume but had no checkpoint to send starts from scratch: the remote side,
        # given none, cannot tell a retry from a first run, so the claim says so. (Nothing ships a
        # checkpoint for a pending operation: what the placement sent is still what the store holds.)
        scratch = await asyncio.to_thread(self._starts_from_scratch, op_id)
        if not await asyncio.to_thread(self._claim, op_id, run, scratch):
            logger.info(
                "operation %s was cancelled while %s started; stopping it", op_id, self.backend.describe(run)
            )
            with contextlib.suppress(BackendError):
                await self.backend.stop(run)
            self.placement.released(run)
            return None
        logger.info("operation %s runs as %s", op_id, self.backend.describe(run))
        if scratch:
            logger.info("operation %s: %s", op_id, retrying_message(0, self._where(run)))
        return run

    def _where(self, run: RemoteRun) -> str:
        """The attempt's place: ``host <url>``, ``ray <address>``."""
        return f"{self.backend.mode} {run.where}"

    def _starts_from_scratch(self, op_id: str) -> bool:
        op = self._ops.get(op_id)
        return resumes_from_checkpoint(op) and self.commands.resume_checkpoint(op) is None

    def _claim(self, op_id: str, run: RemoteRun, scratch: bool = False) -> bool:
        """pending → running with where it runs recorded in one write; False if no longer pending.
        ``scratch``: a retry that starts from scratch, noted in the same write."""

        def change(op: Operation) -> Operation:
            if op.status is not OperationStatus.PENDING:
                return op
            running = transition(op, OperationStatus.RUNNING, self._ops.now())
            running = running.with_changes(
                host_url=run.where,
                host_session_id=run.run_id,
                attempt_log=ran_at(running.attempt_log, self._where(run)),
                attempts=op.attempts + 1,
                progress=Progress(phase="starting", message=f"as {self.backend.describe(run)}"),
            )
            return note_started_from_scratch(running) if scratch else running

        op = self._ops.update(op_id, change)
        if op.status is not OperationStatus.RUNNING or op.host_session_id != run.run_id:
            return False
        self._ops.track(op)
        return True

    async def _follow(self, op_id: str, run: RemoteRun, *, started_now: bool) -> OperationError | None:
        """``started_now``: placed by this task a moment ago (not re-attached): the first look at it
        waits one poll interval, as there is nothing to see yet and the look would take CPU from the
        run's own start (on a host that is this machine, or the backend's polls of a Ray job)."""
        follower = RemoteFollower(
            op_id,
            run,
            operations=self._ops,
            backend=self.backend,
            ingest=self._ingest,
            timings=self._t,
            wake=self._wake[op_id],
            monotonic=self._monotonic,
            first_look_after_s=self._t.poll_initial_s if started_now else 0.0,
        )
        try:
            return await follower.follow()
        finally:
            self.placement.released(run)

    # --- the re-dispatch policy ----------------------------------------------------------------

    async def _after_loss(self, op_id: str, run: RemoteRun | None, error: OperationError) -> bool:
        """A run was lost: the operation is cancelled (a cancel was under way), failed with ``error``
        (``max_retries`` used up), or back to pending to be placed again (True)."""
        if run is not None:
            self.placement.lost(op_id, run, error)
        op = await asyncio.to_thread(self._ops.get, op_id)
        if op.status is OperationStatus.CANCELLING:
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.mark_cancelled, op_id)
            return False
        # The request's own max_retries, else the server's; a mode that never re-dispatches fails the
        # operation at once.
        retries_used = automatic_retries(op)
        allowed = retries_allowed(op, self._t.max_retries) if self._t.redispatch else 0
        if retries_used >= allowed:
            logger.error("operation %s: %s", op_id, error.message)
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.fail, op_id, error)
            return False
        where = self.backend.describe(run) if run is not None else "an unknown host"
        warning = (
            f"{error.code} on {where} ({error.message}); re-dispatched, retry "
            f"{retries_used + 1} of {allowed} (max_retries)"
        )
        requeued = await asyncio.to_thread(self._requeue, op_id, warning, error)
        if requeued:
            logger.warning("operation %s: %s", op_id, warning)
        return requeued

    def _requeue(self, op_id: str, warning: str, error: OperationError) -> bool:
        def change(current: Operation) -> Operation:
            if current.status is not OperationStatus.RUNNING:
                return current
            pending = transition(current, OperationStatus.PENDING, self._ops.now(), error=error)
            return pending.with_changes(
                host_url=None,
                host_session_id=None,
                progress=Progress(phase="queued", message="re-dispatching"),
                warnings=(*current.warnings, warning),
            )

        return self._ops.update(op_id, change).status is OperationStatus.PENDING
