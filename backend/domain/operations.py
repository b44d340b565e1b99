"""The operation: a unit of work the backend tracks from request to outcome, and its state machine."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from backend.domain.attempts import Attempt, end_attempt, queue_attempt, start_attempt
from backend.errors import IllegalTransitionError


class OperationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: A sweep trial its pruner stopped early: an outcome of its own, not a user's cancel.
    PRUNED = "pruned"


TERMINAL_STATUSES: frozenset[OperationStatus] = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED, OperationStatus.PRUNED}
)
ACTIVE_STATUSES: frozenset[OperationStatus] = frozenset({OperationStatus.RUNNING, OperationStatus.CANCELLING})
#: Not finished yet: queued, running or stopping (what "active only" lists).
UNFINISHED_STATUSES: frozenset[OperationStatus] = frozenset(OperationStatus) - TERMINAL_STATUSES
DEFAULT_PROJECT = "default"

# A cancelling operation may still complete: the worker can finish its last batch and store the model
# before it sees the token; the model then exists, and saying "cancelled" would be a lie.
_ALLOWED: dict[OperationStatus, frozenset[OperationStatus]] = {
    OperationStatus.PENDING: frozenset(
        {OperationStatus.RUNNING, OperationStatus.CANCELLED, OperationStatus.FAILED}
    ),
    # running -> pending: a training whose host was lost is re-dispatched (MODELYARD_MAX_RETRIES).
    OperationStatus.RUNNING: frozenset(
        {
            OperationStatus.PENDING,
            OperationStatus.CANCELLING,
            OperationStatus.COMPLETED,
            OperationStatus.FAILED,
            OperationStatus.CANCELLED,
            OperationStatus.PRUNED,
        }
    ),
    OperationStatus.CANCELLING: frozenset(
        {OperationStatus.CANCELLED, OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.PRUNED}
    ),
}

INTERRUPTED = "interrupted"
#: What a manual retry accepts (``interrupted`` is a ``failed`` operation with that error code).
RETRYABLE_STATUSES: frozenset[OperationStatus] = frozenset(
    {OperationStatus.FAILED, OperationStatus.CANCELLED}
)


@dataclass(frozen=True)
class Progress:
    percentage: float = 0.0
    phase: str = "queued"
    message: str = ""
    epoch: int | None = None
    total_epochs: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OperationError:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    id: str
    type: str
    status: OperationStatus
    execution_mode: str
    mode_reason: str
    request: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    progress: Progress = field(default_factory=Progress)
    device: str | None = None
    result: dict[str, Any] | None = None
    error: OperationError | None = None
    warnings: tuple[str, ...] = ()
    idempotency_key: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    history: tuple[dict[str, Any], ...] = ()
    decisions: tuple[dict[str, Any], ...] = ()
    # Host mode: where the training runs, persisted before the backend waits on it (re-attach).
    host_url: str | None = None
    host_session_id: str | None = None
    heartbeat_at: datetime | None = None
    attempts: int = 0
    require_gpu: bool = False
    #: Automatic retries this operation allows (None: the server's ``max_retries``).
    max_retries: int | None = None
    # Local mode: the backend instance whose runner claimed it (its lease says whether it still lives).
    owner_id: str | None = None
    # sha256 of the canonical request body, so a reused idempotency key with another body is refused.
    request_hash: str | None = None
    # The experiment: set when the operation is created, never changed after.
    project: str = DEFAULT_PROJECT
    name: str | None = None
    tags: tuple[str, ...] = ()
    #: The request's workload kind (strategy, tabular, plugin, command).
    workload: str = "strategy"
    #: The API token that submitted / cancelled it; None when tokens were not required.
    submitted_by: str | None = None
    cancelled_by: str | None = None
    #: Each run of the operation (see :mod:`backend.domain.attempts`), oldest first.
    attempt_log: tuple[Attempt, ...] = ()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def with_changes(self, **changes: Any) -> Operation:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class OperationFilter:
    """Which operations to list; every field given narrows the list (an empty one means all)."""

    statuses: tuple[OperationStatus, ...] = ()
    #: Only operations not finished yet (pending, running, cancelling); combines with ``statuses``.
    unfinished_only: bool = False
    op_type: str | None = None
    project: str | None = None
    #: Operations carrying every one of these tags.
    tags: tuple[str, ...] = ()
    workload: str | None = None


@dataclass(frozen=True)
class OperationSummary:
    """What a view of many operations at once (a sweep's trials) shows of each: its status, its error's
    message, its result's model, and its history only when asked for (an epoch row each: the most of a
    finished training's row)."""

    id: str
    status: OperationStatus
    #: The error's message when it has one (possibly empty), else None.
    error_message: str | None = None
    #: ``result["model"]`` (None when it has no result or no model).
    model: Any = None
    history: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(cls, op: Operation, *, history: bool) -> OperationSummary:
        return cls(
            op.id,
            op.status,
            op.error.message if op.error is not None else None,
            (op.result or {}).get("model"),
            op.history if history else (),
        )


@dataclass(frozen=True)
class ProjectSummary:
    """A project's operations counted by status, and when any of them last changed."""

    project: str
    by_status: dict[OperationStatus, int]
    last_activity: datetime

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def can_transition(current: OperationStatus, target: OperationStatus) -> bool:
    return target in _ALLOWED.get(current, frozenset())


def transition(
    op: Operation,
    target: OperationStatus,
    now: datetime,
    *,
    error: OperationError | None = None,
    result: dict[str, Any] | None = None,
) -> Operation:
    """The one way an operation changes status; timestamps follow the status."""
    if not can_transition(op.status, target):
        if op.is_terminal:
            message = f"operation {op.id} is already {op.status.value}; it cannot become {target.value}"
        else:
            message = f"operation {op.id} cannot go from {op.status.value} to {target.value}"
        raise IllegalTransitionError(
            message, operation_id=op.id, status=op.status.value, requested=target.value
        )
    changes: dict[str, Any] = {"status": target, "updated_at": now}
    if target is OperationStatus.RUNNING:
        changes["started_at"] = now
        changes["attempt_log"] = start_attempt(op.attempt_log, op.host_url or op.execution_mode, now)
    elif target in TERMINAL_STATUSES:
        changes["attempt_log"] = end_attempt(op.attempt_log, target.value, now, error)
    elif target is OperationStatus.PENDING:
        ended = end_attempt(op.attempt_log, "requeued", now, error)
        changes["attempt_log"] = queue_attempt(ended, from_checkpoint=True, trigger="automatic")
    if target in TERMINAL_STATUSES:
        changes["completed_at"] = now
    if target is OperationStatus.FAILED:
        changes["error"] = error or OperationError("failed", "the operation failed")
        changes["progress"] = dataclasses.replace(op.progress, phase="failed")
    if target in (OperationStatus.CANCELLED, OperationStatus.PRUNED):
        changes["progress"] = dataclasses.replace(op.progress, phase=target.value)
    if target is OperationStatus.COMPLETED:
        changes["result"] = result
        changes["progress"] = dataclasses.replace(op.progress, percentage=100.0, phase="completed")
    return op.with_changes(**changes)


def retry_operation(op: Operation, now: datetime, *, from_checkpoint: bool) -> Operation:
    """A failed or cancelled operation queued again as a new attempt (manual retry); its history and
    decisions stay, its error and result go. Anything else raises :class:`IllegalTransitionError`."""
    if op.status not in RETRYABLE_STATUSES:
        why = "it is still running" if not op.is_terminal else f"it is {op.status.value}"
        raise IllegalTransitionError(
            f"operation {op.id} cannot be retried: {why}; only failed, cancelled or interrupted "
            "operations can",
            operation_id=op.id,
            status=op.status.value,
            requested="retry",
        )
    return op.with_changes(
        status=OperationStatus.PENDING,
        updated_at=now,
        completed_at=None,
        error=None,
        result=None,
        cancelled_by=None,
        progress=dataclasses.replace(op.progress, phase="queued", message="queued for a retry"),
        attempt_log=queue_attempt(op.attempt_log, from_checkpoint=from_checkpoint, trigger="manual"),
    )
