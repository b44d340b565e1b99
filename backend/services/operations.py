"""OperationsService: the lifecycle of operations, their live progress, and its throttled persistence.

Readers (the API) take only ``_cache_lock`` for a dictionary lookup, so they never wait on the
training thread or on a database write. Writers (status changes, throttled progress) serialise on
``_write_lock`` and use compare-and-set on the stored status, so two writers cannot both win.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from backend.domain.attempts import ran_at
from backend.domain.instances import new_instance_id
from backend.domain.operations import (
    DEFAULT_PROJECT,
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    OperationSummary,
    Progress,
    ProjectSummary,
    retry_operation,
    transition,
)
from backend.domain.ports import Clock, OperationRepository
from backend.domain.sweeps import PRUNER_TOKEN
from backend.errors import OperationNotFoundError
from backend.services.events import EventBroker, OperationEvent
from backend.services.progress import (
    cancelled_message,
    completed_history,
    completed_progress,
    ended_progress,
    merge_progress,
)
from shared.contracts.training import ProgressUpdate

logger = logging.getLogger(__name__)

TerminalObserver = Callable[[Operation], None]
FINISHED_CACHE_SIZE = 1000
#: How long a finished operation is answered from memory before the database is read again: it changes
#: only by a retry, and a retry through another backend must show here within this.
FINISHED_FRESH_S = 2.0


def new_operation_id() -> str:
    return "op_" + uuid.uuid4().hex[:24]


class _Live:
    """What a running operation looks like right now, ahead of the database by at most one interval."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.persisted_at = time.monotonic()


class OperationsService:
    def __init__(
        self,
        repo: OperationRepository,
        clock: Clock,
        broker: EventBroker,
        *,
        progress_interval_s: float = 1.0,
        new_id: Callable[[], str] = new_operation_id,
        instance_id: str | None = None,
    ) -> None:
        #: This backend process: stamped on the local operations its runner claims (``owner_id``).
        self.instance_id = instance_id or new_instance_id()
        self._repo = repo
        self._clock = clock
        self._broker = broker
        self._interval = progress_interval_s
        self._new_id = new_id
        self._cache_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._live: dict[str, _Live] = {}
        # Finished operations change only when retried: cached, and read again once FINISHED_FRESH_S old
        # (a retry through another backend). Op id -> (operation, time.monotonic() when cached).
        self._finished: OrderedDict[str, tuple[Operation, float]] = OrderedDict()
        self._observers: list[TerminalObserver] = []
        self._elsewhere_observers: list[Callable[[str], object]] = []

    def on_terminal(self, observer: TerminalObserver) -> None:
        self._observers.append(observer)

    def on_changed_elsewhere(self, observer: Callable[[str], object]) -> None:
        """``observer(op_id)`` when a progress write finds the status changed by another backend."""
        self._elsewhere_observers.append(observer)

    def now(self) -> datetime:
        return self._clock.now()

    # --- reads -------------------------------------------------------------------------------

    def get_cached(self, op_id: str) -> Operation | None:
        """A running (live) or finished operation without touching the database (a finished one cached
        less than ``FINISHED_FRESH_S`` ago); None otherwise."""
        with self._cache_lock:
            live = self._live.get(op_id)
            if live is not None:
                return live.op
            finished = self._finished.get(op_id)
        if finished is None or time.monotonic() - finished[1] >= FINISHED_FRESH_S:
            return None
        return finished[0]

    def stored(self, op_id: str) -> Operation | None:
        """The operation as the database holds it now (no cache), None when there is none."""
        return self._repo.get(op_id)

    def _read_through(self, op_id: str) -> Operation:
        """The stored operation, the finished cache corrected with it."""
        with self._cache_lock:
            self._finished.pop(op_id, None)
        return self.get(op_id)

    def get(self, op_id: str) -> Operation:
        cached = self.get_cached(op_id)
        if cached is not None:
            return cached
        op = self._repo.get(op_id)
        if op is not None and op.is_terminal:
            self._remember_finished(op)
        if op is None:
            shown = op_id if len(op_id) <= 64 else op_id[:64] + "…"
            raise OperationNotFoundError(
                f"no operation with id {shown!r}; list operations with GET /api/v1/operations",
                operation_id=shown,
            )
        return op

    def summaries(
        self, op_ids: Iterable[str], *, histories: Iterable[str] = ()
    ) -> dict[str, OperationSummary]:
        """Operation id -> its summary, for those of ``op_ids`` that exist, with the history of those
        in ``histories``: the running and finished ones this backend holds from memory (as ``get``
        reads them), all the others in one read."""
        wanted, with_history = set(op_ids), set(histories)
        found: dict[str, OperationSummary] = {}
        for op_id in wanted:
            cached = self.get_cached(op_id)
            if cached is not None:
                found[op_id] = OperationSummary.of(cached, history=op_id in with_history)
        rest = wanted - found.keys()
        for summary in self._repo.summaries(rest, histories=with_history & rest):
            found[summary.id] = summary
        return found

    def _remember_finished(self, op: Operation) -> None:
        with self._cache_lock:
            self._finished[op.id] = (op, time.monotonic())
            self._finished.move_to_end(op.id)
            while len(self._finished) > FINISHED_CACHE_SIZE:
                self._finished.popitem(last=False)

    def find_by_idempotency_key(self, key: str) -> Operation | None:
        return self._repo.get_by_idempotency_key(key)

    def list_operations(
        self, where: OperationFilter = OperationFilter(), *, limit: int = 50, offset: int = 0
    ) -> tuple[list[Operation], int]:
        """A page of the operations ``where`` selects, newest first, and how many it selects in all."""
        ops, total = self._repo.find(where, limit=limit, offset=offset)
        with self._cache_lock:
            return [self._live[o.id].op if o.id in self._live else o for o in ops], total

    def queue_positions(self) -> dict[str, int]:
        """1-based FIFO position of every pending operation."""
        return {op_id: i + 1 for i, op_id in enumerate(self._repo.pending_ids())}

    def pending_ids(self) -> list[str]:
        return self._repo.pending_ids()

    def count_by_status(self) -> dict[OperationStatus, int]:
        return self._repo.count_by_status()

    def project_summaries(self) -> list[ProjectSummary]:
        """Every project with its operations counted by status, the most recently active first."""
        return self._repo.project_summaries()

    def ping(self) -> None:
        self._repo.ping()

    # --- lifecycle ---------------------------------------------------------------------------

    def create(
        self,
        *,
        op_type: str,
        request: dict[str, Any],
        execution_mode: str,
        mode_reason: str,
        warnings: Sequence[str] = (),
        idempotency_key: str | None = None,
        require_gpu: bool = False,
        max_retries: int | None = None,
        request_hash: str | None = None,
        project: str = DEFAULT_PROJECT,
        name: str | None = None,
        tags: Sequence[str] = (),
        workload: str = "strategy",
        submitted_by: str | None = None,
    ) -> tuple[Operation, bool]:
        """A new pending operation, or (existing, False) when ``idempotency_key`` was used before."""
        now = self._clock.now()
        op = Operation(
            id=self._new_id(),
            type=op_type,
            status=OperationStatus.PENDING,
            execution_mode=execution_mode,
            mode_reason=mode_reason,
            request=request,
            created_at=now,
            updated_at=now,
            warnings=tuple(warnings),
            idempotency_key=idempotency_key,
            require_gpu=require_gpu,
            max_retries=max_retries,
            request_hash=request_hash,
            project=project,
            name=name,
            tags=tuple(dict.fromkeys(tags)),  # a tag given twice is kept once, where it first came
            workload=workload,
            submitted_by=submitted_by,
            owner_id=self.instance_id,  # the backend that accepted it queues it, until it dies
        )
        stored = self._repo.add(op)
        if stored.id == op.id:
            self._broker.publish(OperationEvent("status", stored))
        return stored, stored.id == op.id

    def mark_running(self, op_id: str) -> Operation | None:
        """Claim a pending operation for a worker; None if it is no longer pending (e.g. cancelled)."""
        with self._write_lock:
            op = self._repo.get(op_id)
            if op is None or op.status is not OperationStatus.PENDING or self.owned_elsewhere(op):
                return None  # cancelled, claimed, or adopted by another backend meanwhile
            running = transition(op, OperationStatus.RUNNING, self._clock.now())
            running = running.with_changes(
                progress=dataclasses.replace(op.progress, phase="starting", message="starting")
                if len(running.attempt_log) > 1
                else Progress(phase="starting"),
                owner_id=self.instance_id,
                attempt_log=ran_at(running.attempt_log, f"local backend {self.instance_id}"),
            )
            if not self._repo.claim(running):
                return None
            with self._cache_lock:
                self._live[op_id] = _Live(running)
        self._broker.publish(OperationEvent("status", running))
        self._broker.queue_moved()
        return running

    def report_progress(self, op_id: str, update: ProgressUpdate) -> None:
        """Called from the training thread for every update; persists at most once per interval."""
        now = self._clock.now()
        self.report_live(op_id, lambda op: merge_progress(op, update, now))

    def report_live(self, op_id: str, change: Callable[[Operation], Operation]) -> None:
        """Change a running operation's live state (progress, device, heartbeat; never its status)
        through the same throttle as progress: at most one database write per interval."""
        with self._cache_lock:
            live = self._live.get(op_id)
            if live is None:
                return
            live.op = change(live.op)
            snapshot = live.op
            due = time.monotonic() - live.persisted_at >= self._interval
            if due:
                live.persisted_at = time.monotonic()
        self._broker.publish(OperationEvent("progress", snapshot))
        if due:
            self._persist_progress(op_id)

    def track(self, op: Operation) -> None:
        """Follow an operation already running elsewhere live (a host session re-attached at start)."""
        with self._cache_lock:
            self._live.setdefault(op.id, _Live(op))

    def update(self, op_id: str, change: Callable[[Operation], Operation]) -> Operation:
        """Store a change now (compare-and-set on the status); status moves go through ``transition``."""
        updated = self._apply(op_id, change)
        if updated.status is OperationStatus.PENDING:
            with self._cache_lock:
                self._live.pop(op_id, None)
        return updated

    def _persist_progress(self, op_id: str) -> None:
        with self._write_lock:
            with self._cache_lock:
                live = self._live.get(op_id)
                snapshot = live.op if live else None
            if snapshot is None or snapshot.is_terminal:
                return
            if self._repo.save(snapshot, expected=snapshot.status):
                return
        self._changed_elsewhere(op_id)

    def _changed_elsewhere(self, op_id: str) -> None:
        """Another backend changed the stored status (a cancel through it, or a takeover): stop
        mirroring our live view, and tell the observers (the local runner stops the training)."""
        with self._cache_lock:
            self._live.pop(op_id, None)
        logger.warning("operation %s was changed by another backend; its stored state now wins", op_id)
        for observer in self._elsewhere_observers:
            try:
                observer(op_id)
            except Exception:
                logger.exception("observer of operation %s failed", op_id)

    def complete(self, op_id: str, result: dict[str, Any], *, device: str | None = None) -> Operation:
        def change(op: Operation) -> Operation:
            history = completed_history(op, result)
            decisions = tuple(result.get("decisions") or op.decisions)
            warnings = op.warnings + tuple(w for w in result.get("warnings", []) if w not in op.warnings)
            stored = {k: v for k, v in result.items() if k != "history"}
            done = transition(op, OperationStatus.COMPLETED, self._clock.now(), result=stored)
            return done.with_changes(
                progress=completed_progress(op, result),
                history=history,
                decisions=decisions,
                warnings=warnings,
                device=device or op.device,
            )

        return self._apply(op_id, change)

    def fail(self, op_id: str, error: OperationError, *, device: str | None = None) -> Operation:
        """Failed with ``error``; ``device`` fills in the device when the training never reported one."""

        def change(op: Operation) -> Operation:
            failed = transition(op, OperationStatus.FAILED, self._clock.now(), error=error)
            progress = ended_progress(failed.progress, "failed", f"failed: {error.message}")
            return failed.with_changes(device=op.device or device, progress=progress)

        return self._apply(op_id, change)

    def mark_cancelled(self, op_id: str) -> Operation:
        """Cancelled; ``pruned`` instead when a sweep's pruner asked (``cancelled_by`` says so)."""

        def change(op: Operation) -> Operation:
            if op.cancelled_by == PRUNER_TOKEN:
                pruned = transition(op, OperationStatus.PRUNED, self._clock.now())
                message = cancelled_message(op.progress).replace("cancelled", "pruned", 1)
                return pruned.with_changes(progress=ended_progress(pruned.progress, "pruned", message))
            cancelled = transition(op, OperationStatus.CANCELLED, self._clock.now())
            message = cancelled_message(op.progress)
            return cancelled.with_changes(progress=ended_progress(cancelled.progress, "cancelled", message))

        return self._apply(op_id, change)

    def request_cancel(self, op_id: str, *, by: str | None = None) -> Operation:
        """Pending → cancelled at once; running → cancelling (the runner stops it); a second cancel
        while cancelling changes nothing and returns the operation; terminal → 409. ``by``: the token
        that asked, kept as ``cancelled_by``."""

        def change(op: Operation) -> Operation:
            if op.status is OperationStatus.CANCELLING:
                return op
            target = (
                OperationStatus.CANCELLED
                if op.status is OperationStatus.PENDING
                else OperationStatus.CANCELLING
            )
            return transition(op, target, self._clock.now()).with_changes(cancelled_by=by)

        return self._apply(op_id, change)

    def adopt(self, op: Operation) -> bool:
        """Take over ``op`` from its (dead) owner; False when another backend took it first."""
        if not self._repo.adopt(op.id, previous_owner=op.owner_id, new_owner=self.instance_id):
            return False
        with self._cache_lock:
            self._live.pop(op.id, None)  # the next read sees the new owner
        logger.warning(
            "operation %s of backend %s adopted by backend %s", op.id, op.owner_id, self.instance_id
        )
        return True

    def owned_elsewhere(self, op: Operation) -> bool:
        """``op`` belongs to another backend (an operation from before owners belongs to nobody)."""
        return op.owner_id is not None and op.owner_id != self.instance_id

    def unfinished(self) -> list[Operation]:
        """Pending, running and cancelling operations of every backend on this database."""
        ops, _ = self._repo.find(OperationFilter(unfinished_only=True), limit=10_000, offset=0)
        return ops

    def retry(self, op_id: str, *, from_checkpoint: bool = True) -> Operation:
        """Failed, cancelled or interrupted → pending as a new attempt (from the newest checkpoint, or
        from scratch); anything else raises ``IllegalTransitionError`` (a 409)."""
        op = self._apply(
            op_id, lambda op: retry_operation(op, self._clock.now(), from_checkpoint=from_checkpoint)
        )
        if self.owned_elsewhere(op) and self.adopt(op):  # the backend asked runs the new attempt
            op = self.get(op_id)
        return op

    def requeue(self, op_id: str, error: OperationError) -> Operation:
        """A running operation hit an infrastructure fault: back to pending as an automatic attempt that
        resumes from the newest checkpoint; ``error`` is kept on the attempt that ended."""

        def change(op: Operation) -> Operation:
            queued = transition(op, OperationStatus.PENDING, self._clock.now(), error=error)
            message = f"{error.message}; queued again to resume from its last checkpoint"
            # The owner stays (a save never moves it): the sweep that queued it adopts it next.
            return queued.with_changes(
                progress=dataclasses.replace(op.progress, phase="queued", message=message)
            )

        return self.update(op_id, change)

    def active_local(self) -> list[Operation]:
        """Running and cancelling operations of the local runners of every backend on this database."""
        active = OperationFilter(statuses=(OperationStatus.RUNNING, OperationStatus.CANCELLING))
        ops, _ = self._repo.find(active, limit=10_000, offset=0)
        return [op for op in ops if op.execution_mode == "local"]

    def _apply(self, op_id: str, change: Callable[[Operation], Operation]) -> Operation:
        """Compute and store a status change; retried when another writer changed the status first."""
        for _ in range(3):
            with self._write_lock:
                current = self.get(op_id)
                if current.is_terminal:
                    # A finished one changes only by a retry, perhaps through another backend since it
                    # was cached: the change is judged on the stored state.
                    current = self._read_through(op_id)
                updated = change(current)
                if updated is current:
                    return current
                if not self._repo.save(updated, expected=current.status):
                    with self._cache_lock:  # stale: re-read from the database
                        self._live.pop(op_id, None)
                        self._finished.pop(op_id, None)  # retried through another backend
                    continue
                with self._cache_lock:
                    if updated.is_terminal:
                        self._live.pop(op_id, None)
                    elif op_id in self._live:
                        self._live[op_id].op = updated
                if updated.is_terminal:
                    self._remember_finished(updated)
                elif current.is_terminal:  # retried: no longer finished
                    with self._cache_lock:
                        self._finished.pop(op_id, None)
            self._broker.publish(OperationEvent("status", updated))
            if current.status is OperationStatus.PENDING and updated.status is not OperationStatus.PENDING:
                self._broker.queue_moved()
            if updated.is_terminal:
                self._notify_terminal(updated)
            return updated
        raise RuntimeError(f"operation {op_id} kept changing under concurrent writers")

    def _notify_terminal(self, op: Operation) -> None:
        for observer in self._observers:
            try:
                observer(op)
            except Exception:
                logger.exception("terminal observer failed for %s", op.id)
