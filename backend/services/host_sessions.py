"""HostSessionManager: the TrainingRunner of host mode, and the watchdog over every host session.

It owns the dispatcher (placement, start, fallback) and one :class:`SessionFollower` per operation
running on a host. A sweep every ``sweep_interval_s`` (and once at start) finds running host operations
nobody follows — after a backend restart, or a follower that died — and re-attaches to their sessions,
so no host operation is ever left ``running`` unwatched. A lost host ends its operation ``host_lost``,
or re-dispatches it (another host, else local) while ``max_retries`` allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from backend.domain.attempts import automatic_retries, retries_allowed
from backend.domain.operations import (
    ACTIVE_STATUSES,
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    Progress,
    transition,
)
from backend.domain.ports import DatasetCatalog, HostClient, ResumeCheckpoints, TrainingRunner
from backend.errors import IllegalTransitionError
from backend.services.host_dispatch import HostDispatcher, HostTimings
from backend.services.host_follower import SessionFollower
from backend.services.host_registry import HostRegistry
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.result_ingest import ResultIngest

logger = logging.getLogger(__name__)


class HostSessionManager:
    def __init__(
        self,
        operations: OperationsService,
        registry: HostRegistry,
        client: HostClient,
        ingest: ResultIngest,
        datasets: DatasetCatalog,
        fallback: TrainingRunner,
        logs: LogCapture,
        *,
        backend_url: str,
        timings: HostTimings,
        monotonic: Callable[[], float] = time.monotonic,
        checkpoints: ResumeCheckpoints | None = None,
    ) -> None:
        self._ops = operations
        self._registry = registry
        self._client = client
        self._ingest = ingest
        self._logs = logs
        self._timings = timings
        self._monotonic = monotonic
        self._dispatcher = HostDispatcher(
            operations,
            registry,
            client,
            datasets,
            fallback,
            logs,
            backend_url=backend_url,
            timings=timings,
            on_started=self._follow_soon,
            monotonic=monotonic,
            checkpoints=checkpoints,
        )
        self._followers: dict[str, tuple[SessionFollower, asyncio.Task[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # --- TrainingRunner ------------------------------------------------------------------------

    def submit(self, op_id: str) -> None:
        self._dispatcher.submit(op_id)

    def cancel(self, op_id: str) -> bool:
        """Wake the operation's follower: it forwards the stop to the host and waits for the answer."""
        entry = self._followers.get(op_id)
        if entry is None or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(entry[0].wake.set)
        return True

    @property
    def queue_depth(self) -> int:
        return self._dispatcher.queue_depth

    @property
    def dispatching(self) -> frozenset[str]:
        """The operations the dispatcher holds: being placed, or waiting for a free host slot."""
        return frozenset(self._dispatcher.in_flight)

    @property
    def following(self) -> list[str]:
        return [op_id for op_id, (_, task) in self._followers.items() if not task.done()]

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._registry.start()
        await self._dispatcher.start()
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="host-watchdog")

    async def stop(self) -> None:
        """Stop following; host operations stay running and are re-attached at the next start."""
        tasks = [task for _, task in self._followers.values()]
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._dispatcher.stop()
        await self._registry.stop()

    # --- the watchdog --------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._timings.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                logger.exception("host watchdog sweep failed")

    async def sweep(self) -> list[str]:
        """Re-attach (or re-dispatch) every running host operation nobody follows; return their ids."""
        active, _ = await asyncio.to_thread(
            self._ops.list_operations, OperationFilter(statuses=tuple(sorted(ACTIVE_STATUSES))), limit=10_000
        )
        adopted = []
        for op in active:
            if op.execution_mode != "host" or op.id in self.following:
                continue
            if self._ops.owned_elsewhere(op):  # its owner follows it (adopted here once it dies)
                continue
            if op.id in self._dispatcher.in_flight:
                continue
            adopted.append(op.id)
            if op.host_url and op.host_session_id:
                logger.info("re-attaching to session %s on %s for %s", op.host_session_id, op.host_url, op.id)
                self._ops.track(op)
                self._follow_soon(op.id, op.host_url, op.host_session_id)
            else:
                error = OperationError("host_lost", "the backend stopped while dispatching this training")
                await self._lost(op, op.host_url or "", error)
        return adopted

    def _follow_soon(self, op_id: str, host_url: str, session_id: str) -> None:
        """Start following ``op_id`` (on the event loop); no-op if someone already does."""
        entry = self._followers.get(op_id)
        if entry is not None and not entry[1].done():
            return
        follower = SessionFollower(
            op_id,
            host_url,
            session_id,
            operations=self._ops,
            client=self._client,
            ingest=self._ingest,
            timings=self._timings,
            on_lost=self._lost,
            monotonic=self._monotonic,
        )
        task = asyncio.get_running_loop().create_task(self._run(follower), name=f"follow-{op_id}")
        self._followers[op_id] = (follower, task)

    async def _run(self, follower: SessionFollower) -> None:
        try:
            with self._logs.capture(follower.op_id):
                await follower.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("following operation %s failed; the watchdog will re-attach", follower.op_id)
        finally:
            self._registry.session_ended(follower.host_url)
            entry = self._followers.get(follower.op_id)
            if entry is not None and entry[0] is follower:
                self._followers.pop(follower.op_id, None)

    async def _lost(self, op: Operation, host_url: str, error: OperationError) -> None:
        """The host is gone (or failed for reasons of its own): retry elsewhere, or fail the operation."""
        if host_url:
            self._registry.mark_down(host_url, error.message)
        if op.status is OperationStatus.CANCELLING:
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.mark_cancelled, op.id)
            return
        retries_used, allowed = automatic_retries(op), retries_allowed(op, self._timings.max_retries)
        if retries_used >= allowed:
            logger.error("operation %s: %s", op.id, error.message)
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.fail, op.id, error)
            return
        warning = (
            f"{error.code} on {host_url or 'an unknown host'} ({error.message}); re-dispatched, retry "
            f"{retries_used + 1} of {allowed} (max_retries)"
        )
        requeued = await asyncio.to_thread(self._requeue, op.id, warning, error)
        if requeued:
            logger.warning("operation %s: %s", op.id, warning)
            if host_url:
                self._dispatcher.exclude(op.id, host_url)
            self._dispatcher.submit(op.id)

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
