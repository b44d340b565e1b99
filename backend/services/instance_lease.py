"""InstanceLease: this backend's lease on the shared database, and the takeover of dead backends' work.

Each backend process registers a row and renews its heartbeat every third of the lease. Every
operation has an owner: the backend that accepted it, then the one that claimed it. Restart recovery
and a periodic sweep take over only the work of backends whose lease expired (see
:mod:`backend.domain.instances`): a dead owner's running local training is queued again as a new
attempt resuming from its checkpoints on disk while ``max_retries`` allows (else it fails
``interrupted``), a cancelling one ends cancelled, and its queued and host operations are adopted (a
compare-and-set on the owner: one backend wins). So a second ``modelyard serve`` on the same database,
or N backends sharing PostgreSQL, never touch each other's live trainings and never lose a dead one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from backend.domain.attempts import automatic_retries, retries_allowed
from backend.domain.instances import BackendInstance, Liveness, liveness
from backend.domain.operations import INTERRUPTED, OperationError, OperationStatus
from backend.domain.ports import Clock, InstanceRepository
from backend.errors import BackendError
from backend.services.operations import OperationsService

logger = logging.getLogger(__name__)


def machine_key() -> str | None:
    """This boot of this machine and this pid namespace (Linux); None where that cannot be known."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"[:200]


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


class InstanceLease:
    def __init__(
        self,
        repo: InstanceRepository,
        operations: OperationsService,
        clock: Clock,
        *,
        lease_s: float,
        pid_alive: Callable[[int], bool] = process_exists,
        machine: Callable[[], str | None] = machine_key,
        max_retries: int = 0,
    ) -> None:
        self._repo = repo
        self._ops = operations
        self._clock = clock
        self._lease_s = lease_s
        self._pid_alive = pid_alive
        now = clock.now()
        self.me = BackendInstance(
            id=operations.instance_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            machine_key=machine(),
            started_at=now,
            heartbeat_at=now,
        )
        self._task: asyncio.Task[None] | None = None
        self._swept = False
        self._max_retries = max_retries
        #: Told the id of each operation a sweep after the first queued again or adopted pending (the
        #: training service's ``requeue``); at start ``TrainingService.resume_after_restart`` submits them.
        self._requeue: Callable[[str], None] | None = None
        self._requeued: list[str] = []

    def register(self) -> None:
        self._repo.register(self.me)
        logger.info("backend instance %s registered (lease %.0f s)", self.me.id, self._lease_s)

    def liveness(self) -> Liveness:
        """Which backend instances are alive now (one read of the instances table)."""
        live, _ = self._snapshot()
        return live

    def others_alive(self) -> bool:
        live, _ = self._snapshot()
        return bool(live.alive - {self.me.id})

    def sweep(self) -> list[str]:
        """Renew this lease, then take over what dead backends left running; the ids taken over."""
        if not self._repo.heartbeat(self.me.id, self._clock.now()):
            logger.warning("the lease of backend instance %s had lapsed; registering it again", self.me.id)
            self._repo.register(self.me)
        live, dead = self._snapshot()
        # Operations only lose their owner when an instance dies (or, at start, from before leases).
        reclaimed = self._reclaim(live) if dead or not self._swept else []
        adopted = self._adopt(live)
        requeued, self._requeued = self._requeued, []
        if self._swept and self._requeue is not None:
            for op_id in dict.fromkeys(requeued):  # queued again and adopted: once
                self._requeue(op_id)
        self._swept = True
        for instance in dead:
            logger.warning(
                "backend instance %s (%s pid %d) stopped renewing its lease; its work was taken over",
                instance.id,
                instance.hostname,
                instance.pid,
            )
            self._repo.remove(instance.id)
        return reclaimed + adopted

    def on_pending_adopted(self, requeue: Callable[[str], None]) -> None:
        """``requeue(op_id)`` for each operation a sweep after start queued again or adopted pending (the
        ones of the first sweep are queued by the restart's own re-queue, before the runners start)."""
        self._requeue = requeue

    def _adopt(self, live: Liveness) -> list[str]:
        """Become the owner of a dead backend's queued operations, and of its host operations (their
        trainings go on on the host: this backend follows them from now on). A dead backend's running
        local operations are ``_reclaim``'s: their training died with it."""
        adopted = []
        for op in self._ops.unfinished():
            if op.execution_mode == "local" and op.status is not OperationStatus.PENDING:
                continue
            if op.owner_id == self.me.id or not live.is_dead(op.owner_id) or not self._ops.adopt(op):
                continue
            adopted.append(op.id)
            if op.status is OperationStatus.PENDING:
                self._requeued.append(op.id)
        return adopted

    def _snapshot(self) -> tuple[Liveness, list[BackendInstance]]:
        return liveness(
            self._repo.all(),
            me=self.me,
            now=self._clock.now(),
            lease_s=self._lease_s,
            pid_alive=self._pid_alive,
        )

    def _reclaim(self, live: Liveness) -> list[str]:
        """Cancelling → cancelled; running → pending (a new attempt from its checkpoint) while retries
        remain, else failed/interrupted; for every operation of a dead owner."""
        reclaimed = []
        for op in self._ops.active_local():
            if not live.is_dead(op.owner_id):
                continue
            try:
                if op.status is OperationStatus.CANCELLING:
                    self._ops.mark_cancelled(op.id)
                elif automatic_retries(op) < retries_allowed(op, self._max_retries):
                    message = f"the backend running this operation (instance {op.owner_id}) stopped"
                    details = {"previous_status": op.status.value, "owner": op.owner_id}
                    self._ops.requeue(op.id, OperationError(INTERRUPTED, message, details))
                    self._requeued.append(op.id)
                else:
                    message = (
                        "the backend running this operation stopped; retry it or start the training again"
                    )
                    if retries_allowed(op, self._max_retries):
                        message += f" (it was retried {automatic_retries(op)} times, max_retries)"
                    details = {"previous_status": op.status.value, "owner": op.owner_id}
                    self._ops.fail(op.id, OperationError(INTERRUPTED, message, details))
            except BackendError as exc:  # another backend took it over first
                logger.info("operation %s was already taken over: %s", op.id, exc)
                continue
            logger.warning("operation %s of a stopped backend was %s: taken over", op.id, op.status.value)
            reclaimed.append(op.id)
        return reclaimed

    async def start(self) -> None:
        self._task = asyncio.create_task(self._renew_forever(), name="instance-lease")

    async def stop(self) -> None:
        """Stop renewing and drop the row, so a restart need not wait for the lease to expire."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.to_thread(self._repo.remove, self.me.id)
        except Exception:
            logger.exception("could not remove the lease of backend instance %s", self.me.id)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:
                logger.exception("renewing the lease of backend instance %s failed", self.me.id)
