"""What a finished training reports, as typed wire models (pydantic only).

The result is stored as the executor (or a host) produced it, so each model here is an *open record*: its
known fields are typed and documented, keys it does not know pass through unchanged (a plugin's own
metric, a newer host's field), and a field the record did not carry is left out of the JSON rather than
sent as ``null`` — the wire format is exactly what was stored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    #: What mypy sees: an absent field reads as None.
    Absent: TypeAlias = None
    ABSENT = None
else:
    # A field left at MISSING is left out of the JSON (pydantic >= 2.14).
    from pydantic import MISSING as ABSENT

    Absent = ABSENT

#: A JSON number kept as sent: an int stays an int (a bare ``float`` would turn 5 into 5.0 on the wire).
Number = int | float
Record = TypeVar("Record", bound=BaseModel)

logger = logging.getLogger(__name__)


class OpenRecord(BaseModel):
    """Typed known fields (each ``… | Absent = ABSENT``: left out of the JSON when not carried),
    unknown ones kept as they came."""

    model_config = ConfigDict(extra="allow")


def lenient(model: type[Record], data: dict[str, Any]) -> Record:
    """``data`` as ``model``; a known key holding a value of the wrong shape is left out (stored records
    are whatever a host or an older version wrote: one odd key must not fail a whole listing)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
        logger.warning("%s: keys of an unexpected shape left out: %s", model.__name__, sorted(map(str, bad)))
        return model.model_validate({key: value for key, value in data.items() if key not in bad})


class ModelRefView(OpenRecord):
    """Where the trained model version is stored (GET /api/v1/models/{strategy}/{name})."""

    strategy: str
    name: str
    version: int
    path: str | Absent = ABSENT


class ClassReport(OpenRecord):
    precision: Number | Absent | None = ABSENT
    recall: Number | Absent | None = ABSENT
    f1: Number | Absent | None = ABSENT
    support: Number | Absent | None = Field(ABSENT, description="Test samples of this class.")


class TestMetrics(OpenRecord):
    """Metrics on the held-out test split: classification fills accuracy..class_names, regression
    mse..r2; a strategy or plugin may add its own (numbers, keyed by name)."""

    __test__ = False  # not a pytest class, despite the name

    accuracy: Number | Absent | None = ABSENT
    macro_f1: Number | Absent | None = ABSENT
    per_class: dict[str, ClassReport] | Absent | None = Field(ABSENT, description="Per class name.")
    confusion_matrix: list[list[Number]] | Absent | None = Field(
        ABSENT, description="Rows are the true class."
    )
    class_names: list[str] | Absent | None = ABSENT
    mse: Number | Absent | None = ABSENT
    rmse: Number | Absent | None = ABSENT
    mae: Number | Absent | None = ABSENT
    r2: Number | Absent | None = ABSENT
    samples: Number | Absent | None = Field(ABSENT, description="Test samples evaluated.")


class HistoryRow(OpenRecord):
    """One epoch (model workloads) or one step (command runs) of the training history; other metric
    columns (e.g. ``val_accuracy``, a command's own metrics) appear by name."""

    epoch: int | Absent | None = ABSENT
    step: Number | Absent | None = Field(ABSENT, description="Command runs: the step counter's value.")
    train_loss: Number | Absent | None = ABSENT
    val_loss: Number | Absent | None = ABSENT
    learning_rate: Number | Absent | None = ABSENT
    duration_s: Number | Absent | None = ABSENT


class Decision(OpenRecord):
    """Something the trainer decided on its own (stop early, lower the learning rate, checkpoint);
    the decision's own values (e.g. ``new_lr``) appear by name."""

    epoch: int | Absent | None = Field(ABSENT, description="The epoch it was taken in.")
    kind: str = Field(..., description="e.g. early_stop, lr_reduced, checkpoint.")
    message: str | Absent = ABSENT


class TimerStats(OpenRecord):
    """One timer's rollup, in seconds."""

    count: Number | Absent | None = ABSENT
    total_s: Number | Absent | None = ABSENT
    mean_s: Number | Absent | None = ABSENT
    p50_s: Number | Absent | None = ABSENT
    p95_s: Number | Absent | None = ABSENT
    max_s: Number | Absent | None = ABSENT
    dropped: Number | Absent | None = Field(
        ABSENT, description="Events missing from the run's telemetry.jsonl."
    )


class CommandOutcome(OpenRecord):
    """What a command run's program did."""

    name: str | Absent | None = Field(ABSENT, description="The command template.")
    exit_code: int | Absent | None = ABSENT
    lines: int | Absent | None = Field(ABSENT, description="Output lines printed.")
    lines_with_metrics: int | Absent | None = ABSENT
    log_truncated: bool | Absent | None = ABSENT
    leftover_processes_stopped: int | Absent | None = ABSENT
    artifacts: list[str] | Absent | None = Field(ABSENT, description="Files kept as the model's artefacts.")
    last_metrics: dict[str, Number] | Absent | None = Field(
        ABSENT, description="Each metric's last finite value."
    )
    step: int | Absent | None = Field(ABSENT, description="The last step the program reported.")


class TrainingResult(OpenRecord):
    """A completed training's outcome (``OperationView.result``)."""

    model: ModelRefView | Absent | None = Field(
        ABSENT, description="The stored model version; null for none."
    )
    device: str | Absent | None = ABSENT
    test_metrics: TestMetrics | Absent | None = ABSENT
    best_epoch: int | Absent | None = ABSENT
    best_val_loss: Number | Absent | None = ABSENT
    epochs_trained: int | Absent | None = ABSENT
    stop_reason: str | Absent | None = Field(ABSENT, description="e.g. completed, early_stopping, cancelled.")
    feature_importance: dict[str, Number] | Absent | None = Field(ABSENT, description="Per feature name.")
    duration_s: Number | Absent | None = ABSENT
    decisions: list[Decision] | Absent | None = ABSENT
    warnings: list[str] | Absent | None = ABSENT
    telemetry: dict[str, TimerStats] | Absent | None = Field(ABSENT, description="Per timer name.")
    command: CommandOutcome | Absent | None = ABSENT
    host_session_id: str | Absent | None = Field(
        ABSENT, description="Host mode: the session that trained it."
    )
    host_model_sha256: str | Absent | None = Field(
        ABSENT, description="Host mode: the sha256 of the model sent."
    )


class TrainingAnalysisView(OpenRecord):
    """What the history says: the best epoch (or step, for a command run) by ``monitor``, plateau and
    overfitting flags; empty when there is no history yet."""

    monitor: str | Absent | None = Field(
        ABSENT, description="The series judged: val_loss, or the training loss."
    )
    epochs: int | Absent | None = ABSENT
    best_epoch: int | Absent | None = ABSENT
    best_val_loss: Number | Absent | None = ABSENT
    best_train_loss: Number | Absent | None = ABSENT
    plateau: bool | Absent | None = ABSENT
    overfitting: bool | Absent | None = ABSENT
    steps: int | Absent | None = Field(ABSENT, description="Command runs: rows of history.")
    best_step: Number | Absent | None = ABSENT
    last_step: Number | Absent | None = ABSENT
