"""A training running away from the backend (a host session, a Ray job), as values the one follower reads.

``RemoteRun`` says where it runs; ``RemoteStatus`` is one look at it, already translated from the
remote side's own words (a host's SessionView, a Ray job's status and log) by its adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from backend.domain.operations import OperationError
from shared.contracts.training import ProgressUpdate


@dataclass(frozen=True)
class RemoteRun:
    """``where``: the host URL or the Ray Jobs API address; ``run_id``: the session or submission id
    (stored as the operation's ``host_url`` / ``host_session_id``)."""

    where: str
    run_id: str


class RemoteState(StrEnum):
    RUNNING = "running"
    #: Finished with a result: it arrives by callback, else the follower pulls it.
    COMPLETED = "completed"
    #: Finished (or gone) without a result; ``RemoteStatus.error`` says why.
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: The remote side did not answer; the lease decides when the run counts as lost.
    SILENT = "silent"


@dataclass(frozen=True)
class RemoteLogLine:
    level: int
    message: str


@dataclass(frozen=True)
class RemoteStatus:
    state: RemoteState
    #: Where the log relay stands after ``logs`` (the adapter's own measure: a sequence, an offset).
    log_cursor: int = 0
    logs: tuple[RemoteLogLine, ...] = ()
    progress: ProgressUpdate | None = None
    epochs: tuple[dict[str, Any], ...] = ()
    device: str | None = None
    heartbeat: datetime | None = None
    error: OperationError | None = None
    #: FAILED for reasons of the infrastructure, not the training: the runner's re-dispatch policy decides.
    lost: bool = False
    #: How long after the end is first seen the failure waits for what the run posts itself (its result).
    settle_after_s: float = 0.0
    #: SILENT: why.
    reason: str = ""
    #: The epoch the run's training resumed from (a host's re-dispatched training), once it says so.
    resumed_from_epoch: int | None = None
    #: A lost run that failed by itself before its training could start (a Ray job whose entrypoint
    #: exited with its own error code, or whose runtime env could not be set up): if it never reported
    #: to the backend either, the operation fails with this error instead of being retried — a
    #: configuration fault fails the same way each time.
    start_failure: OperationError | None = None


@dataclass(frozen=True)
class RemoteTimings:
    lease_s: float = 30.0
    poll_initial_s: float = 1.0
    poll_max_s: float = 5.0
    result_pull_delay_s: float = 3.0
    cancel_grace_s: float = 15.0
    #: Re-dispatches of a lost run by default (MODELYARD_MAX_RETRIES; a request's max_retries wins);
    #: 0: a lost run fails its operation.
    max_retries: int = 0
    #: Whether this mode re-dispatches at all.
    redispatch: bool = True
    sweep_interval_s: float = 5.0
    callback_max_bytes: int = 64 << 20
