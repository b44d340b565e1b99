"""Wire schemas of the backend's training and operation endpoints (pydantic only)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from shared.contracts.errors import describe_pattern
from shared.contracts.results import Decision, HistoryRow, TimerStats, TrainingAnalysisView, TrainingResult
from shared.contracts.training import CommandSpec, ResourceRequest, TabularSpec, TrainingOverrides, Workload


class OperationStatusName(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"


class ExecutionModeName(StrEnum):
    LOCAL = "local"
    HOST = "host"
    RAY = "ray"
    AUTO = "auto"


_START_EXAMPLE: dict[str, Any] = {
    "strategy": "trend_momentum",
    "symbol": "EURUSD",
    "timeframe": "1h",
    "execution_mode": "local",
    "overrides": {"epochs": 5, "batch_size": 64, "learning_rate": 0.001},
    "idempotency_key": "my-run-2025-01-05",
}


#: A project or tag: lower-case letters, digits, '-' and '_', starting with a letter or digit.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: An experiment's name: it names the model of a command run, so it is one safe path component.
RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$"
MAX_TAGS = 20
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
#: The two patterns in words, for error messages (the API's 422s and the CLI's usage errors).
SLUG_RULE = "1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit (e.g. fx-2025)"
RUN_NAME_RULE = "1-100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
describe_pattern(SLUG_PATTERN, SLUG_RULE)
describe_pattern(RUN_NAME_PATTERN, RUN_NAME_RULE)


class StartTrainingRequest(BaseModel):
    """What a user posts to start a training. Give ``strategy`` (a file name) or ``strategy_yaml``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_START_EXAMPLE]})

    workload: Workload = Workload.STRATEGY
    strategy: str | None = Field(None, min_length=1, max_length=200, description="Name of a strategy file.")
    strategy_yaml: str | None = Field(None, min_length=1, max_length=200_000, description="Inline strategy.")
    symbol: str | list[str] | None = Field(None, description="Symbol, or a list of symbols.")
    timeframe: str | list[str] | None = Field(None, description="Timeframe, or a list of timeframes.")
    start_date: date | None = None
    end_date: date | None = None
    execution_mode: ExecutionModeName | None = Field(None, description="local, host, ray or auto (default).")
    require_gpu: bool = False
    max_retries: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Automatic retries of an infrastructure fault (backend restart, lost host, lost Ray job) for this "
        "training, each resuming from its last checkpoint; null: the server's MODELYARD_MAX_RETRIES.",
    )
    resources: ResourceRequest | None = Field(
        None, description="Ray mode: CPUs and memory the job reserves (require_gpu adds one GPU)."
    )
    overrides: TrainingOverrides = Field(default_factory=TrainingOverrides)
    tabular: TabularSpec | None = None
    plugin: str | None = Field(None, description="Import path 'package.module:factory' of a plugin.")
    command: CommandSpec | None = Field(
        None, description="The command workload: template name, params, data."
    )
    project: str = Field("default", pattern=SLUG_PATTERN, description="Project slug the training belongs to.")
    name: str | None = Field(
        None, pattern=RUN_NAME_PATTERN, description="The experiment's name (a command run's model name)."
    )
    tags: list[Slug] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Tag slugs (lower-case, at most 20)."
    )
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class StartTrainingResponse(BaseModel):
    operation_id: str
    status: OperationStatusName
    execution_mode: ExecutionModeName
    mode_reason: str
    warnings: list[str] = Field(default_factory=list)
    link: str


class ProgressView(BaseModel):
    percentage: float = 0.0
    phase: str = "queued"
    message: str = ""
    epoch: int | None = None
    total_epochs: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


#: Free-form by design: what an error knows varies by error (a field, a limit, the known names…). Any
#: JSON value per key; the generated client gets a typed ``ErrorInfoDetails`` mapping for it.
ErrorDetails = dict[str, JsonValue]


class ErrorInfo(BaseModel):
    code: str = Field(..., description="Stable machine-readable code, e.g. not_found, idempotency_conflict.")
    message: str = Field(..., description="What went wrong and how to fix it, for a person.")
    details: ErrorDetails = Field(
        default_factory=dict, description="Free-form JSON values: the field at fault, the limit, …"
    )


class AttemptView(BaseModel):
    """One run of an operation: the first, an automatic retry after an infrastructure fault, or a
    manual retry."""

    number: int = Field(..., description="1 for the first run.")
    outcome: str = Field(
        ...,
        description="queued, running, or how it ended: completed, failed, cancelled, or requeued (an "
        "infrastructure fault sent it back to the queue).",
    )
    where: str | None = Field(None, description="Where it ran: 'local backend <instance>' or a host's URL.")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: ErrorInfo | None = Field(None, description="Why it ended, when it did not complete.")
    from_checkpoint: bool = Field(False, description="Whether it resumes from the newest checkpoint.")
    resumed_from_epoch: int | None = Field(
        None, description="The epoch of the checkpoint it resumed from (0: none was valid, from scratch)."
    )
    trigger: str | None = Field(None, description="manual (POST .../retry) or automatic; null for the first.")


class RetryRequest(BaseModel):
    """How to retry a failed, cancelled or interrupted operation."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"from_checkpoint": True}]})

    from_checkpoint: bool = Field(
        True,
        description="Resume from the operation's newest valid checkpoint (true), or train from scratch "
        "(false). Without a valid checkpoint the retry starts from scratch and says so.",
    )


class OperationView(BaseModel):
    operation_id: str
    type: str = Field(..., description="What kind of operation: training.")
    status: OperationStatusName
    execution_mode: ExecutionModeName
    mode_reason: str = ""
    device: str | None = None
    queue_position: int | None = Field(None, description="1 for the next pending operation to run.")
    progress: ProgressView
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: TrainingResult | None = Field(None, description="Once completed: what the training produced.")
    error: ErrorInfo | None = None
    warnings: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None
    host_url: str | None = Field(None, description="Host mode: the host service running it.")
    host_session_id: str | None = Field(None, description="Host mode: the session id on that host.")
    last_heartbeat: datetime | None = Field(None, description="Host mode: the host's last heartbeat.")
    attempts: int = Field(0, description="Dispatches so far (more than 1 after a re-dispatch).")
    project: str = Field("default", description="The project the training belongs to.")
    name: str | None = Field(None, description="The experiment's name, if one was given.")
    tags: list[str] = Field(default_factory=list, description="Its tags, in the order given.")
    workload: Workload = Field(Workload.STRATEGY, description="What it trains.")
    submitted_by: str | None = Field(
        None, description="The name of the API token that submitted it; null when tokens were not required."
    )
    cancelled_by: str | None = Field(
        None, description="The name of the API token that cancelled it, if one did."
    )
    max_retries: int | None = Field(
        None, description="Automatic retries the request allows; null: the server's MODELYARD_MAX_RETRIES."
    )
    attempt_history: list[AttemptView] = Field(
        default_factory=list, description="Each run of the operation, oldest first (retries included)."
    )


class OperationList(BaseModel):
    items: list[OperationView]
    total: int = Field(..., description="How many operations the filters select, over all pages.")
    limit: int
    offset: int


class ProjectView(BaseModel):
    """One project: its operations counted by status, and when any of them last changed."""

    project: str = Field(..., description="The project's slug.")
    total: int = Field(..., description="Operations in the project, whatever their status.")
    by_status: dict[OperationStatusName, int] = Field(
        ..., description="Operations per status; statuses with none are left out."
    )
    last_activity: datetime = Field(
        ..., description="The latest creation, update or completion of any of its operations."
    )


class ProjectList(BaseModel):
    items: list[ProjectView] = Field(..., description="Every project with an operation, most recent first.")


class OperationMetrics(BaseModel):
    """Per-epoch history of an operation and what can be read from it."""

    operation_id: str
    status: OperationStatusName
    history: list[HistoryRow]
    best_epoch: int | None = None
    best_val_loss: float | None = None
    plateau: bool = False
    overfitting: bool = False
    decisions: list[Decision] = Field(default_factory=list)
    analysis: TrainingAnalysisView = Field(default_factory=TrainingAnalysisView)
    telemetry: dict[str, TimerStats] = Field(
        default_factory=dict,
        description="Per timer name: count, total_s, mean_s, p50_s, p95_s, max_s (and dropped: events "
        "missing from the run's telemetry.jsonl).",
    )


class LogLine(BaseModel):
    seq: int
    at: datetime
    level: str
    logger: str
    message: str


class OperationLogs(BaseModel):
    operation_id: str
    lines: list[LogLine]
    next_offset: int
    truncated: bool = False
