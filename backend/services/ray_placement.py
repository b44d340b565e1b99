"""RayPlacement: ray mode's Placement. One Ray job per operation, ``submission_id`` = its id.

Submit first, then record (the RemoteRunner's claim): an operation becomes running only once Ray has
the job, and a submit that finds its id taken adopts that job instead, so a backend that died between
the two never submits twice. A resource request the cluster can never satisfy is refused before
anything is submitted; a cluster that does not answer is retried for up to the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.domain.operations import OperationError, OperationStatus
from backend.domain.ports import RemoteBackend
from backend.domain.ray_cluster import JobResources
from backend.domain.remote_runs import RemoteRun, RemoteTimings
from backend.errors import IllegalTransitionError, RayRejectedError, RayUnavailableError
from backend.services.operations import OperationsService
from backend.services.ray_cluster import RayClusterMonitor
from backend.services.session_commands import SessionCommands
from shared.contracts.host import StartSession
from shared.contracts.training import TrainingRequest
from shared.trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayTimings:
    poll_s: float = 1.0
    lease_s: float = 30.0
    #: After the job ended: how long its result (posted before it exits) may take to be recorded.
    result_grace_s: float = 3.0
    cancel_grace_s: float = 15.0
    sweep_interval_s: float = 5.0
    token_ttl_s: float = 86400.0
    #: Re-submissions of a lost job (MODELYARD_MAX_RETRIES; a request's max_retries wins).
    max_retries: int = 0

    def remote(self) -> RemoteTimings:
        """The follower's timings: a steady poll (the job posts its progress itself); a lost job
        (``ray_job_lost``) is submitted again while ``max_retries`` allows, resuming from the newest
        checkpoint it shipped, or from scratch when it shipped none: a retry from scratch is still a
        retry (the same policy as a lost host's training and a local one after a backend crash)."""
        return RemoteTimings(
            lease_s=self.lease_s,
            poll_initial_s=self.poll_s,
            poll_max_s=self.poll_s,
            cancel_grace_s=self.cancel_grace_s,
            max_retries=self.max_retries,
            sweep_interval_s=self.sweep_interval_s,
        )


def resources_of(request: TrainingRequest, require_gpu: bool) -> JobResources:
    wanted = request.resources
    return JobResources(
        cpus=wanted.cpus if wanted else 1.0,
        gpus=1.0 if require_gpu else 0.0,
        memory_bytes=wanted.memory_mb * 2**20 if wanted and wanted.memory_mb else None,
    )


class RayPlacement:
    def __init__(
        self,
        operations: OperationsService,
        monitor: RayClusterMonitor,
        backend: RemoteBackend,
        commands: SessionCommands,
        *,
        timings: RayTimings,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ops = operations
        self.monitor = monitor
        self._backend = backend
        self._commands = commands
        self._t = timings
        self._monotonic = monotonic

    @property
    def idempotent(self) -> bool:
        return True

    async def start(self) -> None:
        await self.monitor.start()

    async def stop(self) -> None:
        await self.monitor.stop()

    def released(self, run: RemoteRun) -> None:
        return None  # Ray frees the job's resources itself

    def lost(self, op_id: str, run: RemoteRun, error: OperationError) -> None:
        return None

    async def place(self, op_id: str) -> RemoteRun | None:
        """Submit the job; None when the operation is settled otherwise (failed, no longer pending)."""
        op = await asyncio.to_thread(self._ops.get, op_id)
        if op.status is not OperationStatus.PENDING:
            return None
        address = self.monitor.jobs.address
        try:
            request = TrainingRequest.model_validate(op.request)
        except ValueError as exc:
            await self._fail(op_id, OperationError("invalid_request", str(exc)))
            return None
        try:  # the data it needs exists and can travel
            command = await asyncio.to_thread(self._commands.build, op)
        except TrainkitError as exc:
            await self._fail(op_id, OperationError(exc.code, exc.message, dict(exc.details)))
            return None
        resources = resources_of(request, op.require_gpu)
        refusal = self.monitor.state().refusal(resources) if self.monitor.is_available() else None
        if refusal is not None:
            await self._fail(
                op_id, OperationError("ray_resources_unavailable", refusal, {"address": address})
            )
            return None
        return await self._submit(op_id, command, resources)

    async def _submit(self, op_id: str, command: StartSession, resources: JobResources) -> RemoteRun | None:
        address = self.monitor.jobs.address
        waiting_since = self._monotonic()
        while True:
            try:
                return await self._backend.start(address, command, resources)
            except RayRejectedError as exc:
                await self._fail(op_id, OperationError("ray_rejected", exc.message, {"address": address}))
                return None
            except RayUnavailableError as exc:
                if self._monotonic() - waiting_since > self._t.lease_s:
                    message = (
                        f"the Ray cluster did not take the job within {self._t.lease_s:.0f} s "
                        f"(MODELYARD_RAY_LEASE_S): {exc.message}; start it (`ray start --head`) or fix "
                        "MODELYARD_RAY_ADDRESS"
                    )
                    await self._fail(op_id, OperationError("ray_unavailable", message, {"address": address}))
                    return None
                logger.warning("submitting %s to Ray failed, retrying: %s", op_id, exc.message)
                await asyncio.sleep(self._t.poll_s)

    async def _fail(self, op_id: str, error: OperationError) -> None:
        with contextlib.suppress(IllegalTransitionError):  # settled meanwhile (cancelled)
            await asyncio.to_thread(self._ops.fail, op_id, error)
