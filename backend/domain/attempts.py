"""The attempts of an operation: each run of it (first dispatch, automatic retry, manual retry), where it
ran, when, how it ended and which epoch it resumed from. Pure: :func:`transition` keeps them in step
with the status, :func:`retry_operation` opens the next one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.domain.operations import Operation, OperationError

#: Faults of the infrastructure, not of the training: retried automatically (``max_retries``).
INFRASTRUCTURE_FAULTS: frozenset[str] = frozenset(
    {"host_lost", "worker_crashed", "interrupted", "ray_job_lost"}
)
QUEUED = "queued"
RUNNING = "running"


@dataclass(frozen=True)
class Attempt:
    """One run of an operation. ``outcome`` is ``queued`` (waiting to run), ``running``, or how it
    ended (``completed``, ``failed``, ``cancelled``, ``requeued`` when a fault sent it back to the queue)."""

    number: int
    outcome: str = QUEUED
    where: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: Whether this attempt resumes from the newest checkpoint (False: from scratch).
    from_checkpoint: bool = False
    #: The epoch of the checkpoint it resumed from, once the training said so (0: from scratch).
    resumed_from_epoch: int | None = None
    #: ``manual`` (POST .../retry) or ``automatic`` (an infrastructure fault); None for the first.
    trigger: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("started_at", "ended_at"):
            value = out[key]
            out[key] = value.isoformat() if isinstance(value, datetime) else None
        return out

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Attempt:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in fields}
        for key in ("started_at", "ended_at"):
            value = values.get(key)
            values[key] = datetime.fromisoformat(value) if isinstance(value, str) else None
        return cls(**values)


def automatic_retries(op: Operation) -> int:
    """How many times an infrastructure fault sent the operation back to the queue."""
    return sum(1 for a in op.attempt_log if a.trigger == "automatic")


def retries_allowed(op: Operation, default: int) -> int:
    """The automatic retries ``op`` allows: its request's ``max_retries``, else the server's ``default``."""
    return default if op.max_retries is None else op.max_retries


def start_attempt(log: tuple[Attempt, ...], where: str, now: datetime) -> tuple[Attempt, ...]:
    """The queued attempt (or a first one) now running at ``where``."""
    if log and log[-1].outcome == QUEUED:
        return (*log[:-1], dataclasses.replace(log[-1], outcome=RUNNING, where=where, started_at=now))
    return (*log, Attempt(number=len(log) + 1, outcome=RUNNING, where=where, started_at=now))


def end_attempt(
    log: tuple[Attempt, ...], outcome: str, now: datetime, error: OperationError | None = None
) -> tuple[Attempt, ...]:
    """The running attempt ended with ``outcome``; a log without one is returned as it is."""
    if not log or log[-1].outcome != RUNNING:
        return log
    ended = dataclasses.replace(
        log[-1],
        outcome=outcome,
        ended_at=now,
        error_code=None if error is None else error.code,
        error_message=None if error is None else error.message,
    )
    return (*log[:-1], ended)


def ran_at(log: tuple[Attempt, ...], where: str) -> tuple[Attempt, ...]:
    """The running attempt's place, once it is known more precisely than the execution mode."""
    if not log or log[-1].outcome != RUNNING:
        return log
    return (*log[:-1], dataclasses.replace(log[-1], where=where))


def queue_attempt(log: tuple[Attempt, ...], *, from_checkpoint: bool, trigger: str) -> tuple[Attempt, ...]:
    return (*log, Attempt(number=len(log) + 1, from_checkpoint=from_checkpoint, trigger=trigger))


def note_resumed(log: tuple[Attempt, ...], epoch: int) -> tuple[Attempt, ...]:
    """The running attempt resumed from ``epoch`` (0: it had to start from scratch)."""
    if not log or log[-1].outcome != RUNNING:
        return log
    return (*log[:-1], dataclasses.replace(log[-1], resumed_from_epoch=epoch))


def reported_since_placed(op: Operation) -> bool:
    """Whether the running attempt's run has reported to the backend (a heartbeat since the attempt
    before it ended; any, for a first attempt): a run that never did failed before it started."""
    if op.heartbeat_at is None:
        return False
    ended = [a.ended_at for a in op.attempt_log[:-1] if a.ended_at is not None]
    return not ended or op.heartbeat_at > max(ended)


def resumes_from_checkpoint(op: Operation) -> bool:
    """Whether the attempt about to run (or running) should resume from the newest checkpoint."""
    return bool(op.attempt_log) and op.attempt_log[-1].from_checkpoint
