"""HostPlacement: host mode's Placement. Pending operations go to a healthy host with a free slot,
oldest first.

All hosts busy → the operation waits (pending) for a slot. No healthy host → without ``require_gpu`` it
runs locally (the fallback reason lands in its warnings and its log); with it, it waits up to the lease
for a GPU host and then fails ``host_unavailable``. A host where a run was lost is marked down, and not
tried again for that operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from backend.domain.hosts import census_of
from backend.domain.operations import Operation, OperationError, OperationStatus
from backend.domain.ports import RemoteBackend, TrainingRunner
from backend.domain.ray_cluster import JobResources
from backend.domain.remote_runs import RemoteRun
from backend.errors import HostRejectedError, HostUnavailableError
from backend.services.host_registry import HostRegistry
from backend.services.operations import OperationsService
from backend.services.session_commands import SessionCommands
from shared.trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)

_RETRY: Literal["retry"] = "retry"


class HostPlacement:
    def __init__(
        self,
        operations: OperationsService,
        registry: HostRegistry,
        backend: RemoteBackend,
        commands: SessionCommands,
        fallback: TrainingRunner,
        *,
        lease_s: float,
        poll_max_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ops = operations
        self._registry = registry
        self._backend = backend
        self._commands = commands
        self._fallback = fallback
        self._lease_s = lease_s
        self._poll_max_s = poll_max_s
        self._monotonic = monotonic
        self._excluded: dict[str, set[str]] = {}
        self._turn: asyncio.Lock | None = None

    @property
    def idempotent(self) -> bool:
        return False  # a host that took the session before the backend recorded it would run it twice

    async def start(self) -> None:
        self._turn = asyncio.Lock()  # waiters are served first come, first served: oldest first
        await self._registry.start()

    async def stop(self) -> None:
        await self._registry.stop()

    def released(self, run: RemoteRun) -> None:
        self._registry.session_ended(run.where)

    def lost(self, op_id: str, run: RemoteRun, error: OperationError) -> None:
        self._registry.mark_down(run.where, error.message)
        self._excluded.setdefault(op_id, set()).add(run.where)

    async def place(self, op_id: str) -> RemoteRun | None:
        """Wait for a slot and start ``op_id`` there, or fall back / fail as the rules say."""
        assert self._turn is not None, "HostPlacement.start() was not awaited"
        async with self._turn:
            try:
                return await self._place(op_id)
            finally:
                self._excluded.pop(op_id, None)  # a later loss names the host to avoid next

    async def _place(self, op_id: str) -> RemoteRun | None:
        waiting_since = self._monotonic()
        excluded = self._excluded.get(op_id, set())
        while True:
            op = await asyncio.to_thread(self._ops.get, op_id)
            if op.status is not OperationStatus.PENDING:
                return None
            url = self._registry.place(exclude=sorted(excluded), require_gpu=op.require_gpu)
            if url is not None:
                started = await self._start_on(url, op)
                if started != _RETRY:
                    return started if isinstance(started, RemoteRun) else None
            elif not self._any_host_fits(op, excluded):
                if not op.require_gpu:
                    await asyncio.to_thread(self._fall_back, op)
                    return None
                if self._monotonic() - waiting_since > self._lease_s:
                    await asyncio.to_thread(self._fail_unavailable, op)
                    return None
            await self._registry.wait_for_change(self._poll_max_s)

    def _any_host_fits(self, op: Operation, excluded: set[str]) -> bool:
        return any(
            s.healthy and s.url not in excluded and (s.has_gpu or not op.require_gpu)
            for s in self._registry.states()
        )

    async def _start_on(self, url: str, op: Operation) -> RemoteRun | Literal["retry"] | None:
        """The session started there; None when the operation is settled (failed); ``_RETRY``."""
        try:
            command = await asyncio.to_thread(self._commands.build, op)
        except TrainkitError as exc:
            self._registry.release(url)
            await asyncio.to_thread(self._ops.fail, op.id, OperationError(exc.code, exc.message))
            return None
        try:
            run = await self._backend.start(url, command, JobResources())
        except HostUnavailableError as exc:
            self._registry.release(url)
            if exc.details.get("status") is None:
                self._registry.mark_down(url, exc.message)
            logger.info("operation %s not started on %s: %s", op.id, url, exc.message)
            return _RETRY
        except HostRejectedError as exc:
            self._registry.release(url)
            # The host's own code (command_not_found, invalid_config ...) says what to fix.
            details = {"host": url, "host_error": exc.details.get("host_error")}
            await asyncio.to_thread(
                self._ops.fail, op.id, OperationError("host_rejected", exc.message, details)
            )
            return None
        self._registry.claimed(url)
        return run

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
            f"this training requires a GPU and within {self._lease_s:.0f} s "
            f"(MODELYARD_HOST_LEASE_S) {missing}"
            + ("" if "require_gpu" in missing else "; or drop require_gpu")
        )
        logger.error("operation %s: %s", op.id, message)
        self._ops.fail(op.id, OperationError("host_unavailable", message))
