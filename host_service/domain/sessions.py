"""A training session on this host and its one state machine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from host_service.errors import IllegalTransitionError


class SessionStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})

_ALLOWED: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.STARTING: frozenset(
        {SessionStatus.RUNNING, SessionStatus.STOPPING, SessionStatus.FAILED, SessionStatus.CANCELLED}
    ),
    SessionStatus.RUNNING: frozenset(
        {SessionStatus.STOPPING, SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
    ),
    # A stop can race the end of training: whatever the worker reports last wins.
    SessionStatus.STOPPING: frozenset(
        {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
}


@dataclass
class Session:
    """One training on this host. ``fingerprint`` identifies the start request (for idempotent starts)."""

    session_id: str
    operation_id: str
    fingerprint: str
    callback_url: str
    request: dict[str, Any]
    datasets: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    status: SessionStatus = SessionStatus.STARTING
    progress: dict[str, Any] | None = None
    device: str | None = None
    last_heartbeat: datetime | None = None
    error: dict[str, Any] | None = None
    result_available: bool = False
    result_acknowledged: bool = False
    callback_delivered: bool = False
    worker_pid: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where each new training checkpoint is shipped (None: nowhere), and the one to resume from.
    checkpoint_url: str | None = None
    resume_checkpoint: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = self.status.value
        for key in ("created_at", "updated_at", "last_heartbeat"):
            value = record[key]
            record[key] = value.isoformat() if value is not None else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Session:
        fields = dict(record)
        fields["status"] = SessionStatus(fields["status"])
        for key in ("created_at", "updated_at", "last_heartbeat"):
            value = fields.get(key)
            fields[key] = datetime.fromisoformat(value) if value else None
        return cls(**fields)


def transition(
    session: Session, target: SessionStatus, *, now: datetime, error: dict[str, Any] | None = None
) -> None:
    """Move ``session`` to ``target`` (the only way its status changes); illegal moves raise."""
    if target not in _ALLOWED[session.status]:
        raise IllegalTransitionError(
            f"session {session.session_id} cannot go from {session.status.value} to {target.value}",
            session_id=session.session_id,
            status=session.status.value,
            target=target.value,
        )
    session.status = target
    session.updated_at = now
    if error is not None:
        session.error = error
    if target in TERMINAL_STATUSES:
        session.worker_pid = None


#: How many of the last epochs and log lines a session keeps for the backend to follow (it polls them
#: every few seconds; the full history arrives with the result).
RECENT_EPOCHS = 100
RECENT_LOGS = 200


def record_epoch(session: Session, progress: dict[str, Any]) -> None:
    """Keep the epoch row a progress report carries (``extra.epoch_metrics``), if any. A resumed
    training says once which epoch it continued from (kept for every poll) and the epochs it restored
    (they become the recent ones: the backend may have missed the last of them from the lost host)."""
    extra = progress.get("extra") or {}
    resumed = extra.get("resumed_from_epoch")
    if isinstance(resumed, int):
        session.extra["resumed_from_epoch"] = resumed
        restored = [dict(row) for row in extra.get("resumed_history") or [] if isinstance(row, dict)]
        session.extra["recent_epochs"] = restored[-RECENT_EPOCHS:]
    row = extra.get("epoch_metrics")
    if isinstance(row, dict):
        rows = [*session.extra.get("recent_epochs", []), dict(row)]
        session.extra["recent_epochs"] = rows[-RECENT_EPOCHS:]


def record_log(session: Session, line: dict[str, Any]) -> None:
    """Keep one log line of the training, numbered from 1 (``seq``) so a reader can tell new ones."""
    seq = int(session.extra.get("log_seq", 0)) + 1
    session.extra["log_seq"] = seq
    entry = {
        "seq": seq,
        "level": str(line.get("level", "INFO")),
        "logger": str(line.get("logger", "")),
        "message": str(line.get("message", ""))[:8192],
    }
    session.extra["recent_logs"] = [*session.extra.get("recent_logs", []), entry][-RECENT_LOGS:]
