"""Folding the executor's progress updates into an operation's live state."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from backend.domain.attempts import RUNNING, note_resumed
from backend.domain.operations import Operation, Progress
from shared.contracts.training import ProgressUpdate

logger = logging.getLogger(__name__)

# Bounds on what one operation keeps in memory and in its row, whatever the training reports.
MAX_HISTORY = 10_000
MAX_DECISIONS = 1_000


def merge_progress(op: Operation, update: ProgressUpdate, now: datetime) -> Operation:
    """The operation after ``update``: the bar never moves back; epoch records and decisions accumulate."""
    progress = Progress(
        percentage=round(max(op.progress.percentage, min(update.percentage, 100.0)), 2),
        phase=update.phase,
        message=update.message,
        epoch=update.epoch if update.epoch is not None else op.progress.epoch,
        total_epochs=update.total_epochs if update.total_epochs is not None else op.progress.total_epochs,
        metrics=dict(update.metrics) or op.progress.metrics,
    )
    changes: dict[str, Any] = {"progress": progress, "updated_at": now}
    epoch_metrics = update.extra.get("epoch_metrics")
    if isinstance(epoch_metrics, dict) and len(op.history) < MAX_HISTORY:
        changes["history"] = (*before_epoch(op.history, epoch_metrics.get("epoch")), dict(epoch_metrics))
    resumed = update.extra.get("resumed_from_epoch")
    if isinstance(resumed, int) and not isinstance(resumed, bool):
        changes.update(_resumed_changes(op, resumed, progress))
    metric_rows = update.extra.get("metric_rows")
    if isinstance(metric_rows, list) and metric_rows:
        rows = [dict(row) for row in metric_rows if isinstance(row, dict)]
        changes["history"] = thinned((*op.history, *rows))
    decision = update.extra.get("decision")
    if isinstance(decision, dict) and len(op.decisions) < MAX_DECISIONS:
        changes["decisions"] = (*op.decisions, dict(decision))
    device = update.extra.get("device")
    if isinstance(device, str) and device:
        changes["device"] = device
    return op.with_changes(**changes)


def _resumed_changes(op: Operation, epoch: int, progress: Progress) -> dict[str, Any]:
    """The running attempt resumed from ``epoch``: noted in it, the epochs after it dropped from the
    history (this attempt trains them again), and the progress says so."""
    changes: dict[str, Any] = {
        "attempt_log": note_resumed(op.attempt_log, epoch),
        "history": before_epoch(op.history, epoch + 1),
    }
    if op.attempt_log:
        where = op.attempt_log[-1].where or op.execution_mode
        changes["progress"] = dataclasses.replace(progress, message=retrying_message(epoch, where))
    return changes


def retrying_message(epoch: int, where: str) -> str:
    """What the progress and the log say of an attempt that resumed from ``epoch`` (0: from scratch)."""
    return f"retrying from epoch {epoch} on {where}" if epoch else f"retrying from scratch on {where}"


def note_started_from_scratch(op: Operation) -> Operation:
    """The running retry starts from scratch (it was to resume, but no checkpoint was there to send):
    noted in its attempt, the lost attempts' epochs dropped from the history (this one trains them again),
    and the progress says so."""
    return op.with_changes(**_resumed_changes(op, 0, op.progress))


def note_remote_resume(op: Operation, epoch: int | None) -> Operation:
    """A remote training (a host's) said it resumed from ``epoch``; applied once per attempt, however
    often the polls repeat it, and before the attempt's own epochs join the history."""
    attempt = op.attempt_log[-1] if op.attempt_log else None
    if (
        epoch is None
        or attempt is None
        or attempt.outcome != RUNNING
        or attempt.resumed_from_epoch is not None
    ):
        return op
    logger.info("operation %s: %s", op.id, retrying_message(epoch, attempt.where or op.execution_mode))
    return op.with_changes(**_resumed_changes(op, epoch, op.progress))


def before_epoch(history: tuple[dict[str, Any], ...], epoch: object) -> tuple[dict[str, Any], ...]:
    """``history`` without the rows of ``epoch`` and later (a command's rows: of that step and later): an
    attempt that resumed from a checkpoint runs again the epochs the previous attempt did after it, and
    each epoch is listed once."""
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return history
    return tuple(row for row in history if not _at_or_after(row, epoch))


def _at_or_after(row: Mapping[str, Any], epoch: int) -> bool:
    position = row.get("epoch", row.get("step"))
    return isinstance(position, int | float) and not isinstance(position, bool) and position >= epoch


def completed_history(op: Operation, result: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The history of a completed training: its result's. A resumed command's result holds only the steps
    its own attempt ran (a model training's restores the earlier epochs from its checkpoint), so the
    steps up to the checkpoint come from the operation's history, each once."""
    rows = result.get("history")
    if not rows:
        return op.history
    resumed = result.get("resumed_from_epoch")
    if isinstance(resumed, int) and resumed > 0 and all(_at_or_after(row, resumed + 1) for row in rows):
        return thinned((*before_epoch(op.history, resumed + 1), *map(dict, rows)))
    return tuple(rows)


def with_new_epochs(
    history: tuple[dict[str, Any], ...], recent: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], ...]:
    """``history`` with the rows of ``recent`` (a host's last epochs) whose epoch is past its last."""
    last = max((int(row["epoch"]) for row in history if isinstance(row.get("epoch"), int)), default=0)
    new = [dict(row) for row in recent if isinstance(row.get("epoch"), int) and int(row["epoch"]) > last]
    return thinned((*history, *new)) if new else history


def thinned(rows: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """At most MAX_HISTORY rows: when over, every other older row goes (the newest always stays), so a
    long step-keyed history keeps its shape at half the resolution instead of losing its end."""
    while len(rows) > MAX_HISTORY:
        rows = (*rows[:-1:2], rows[-1])
    return rows


_HEADLINE_KEYS = ("accuracy", "macro_f1", "rmse", "r2", "train_loss", "val_loss", "val_accuracy", "loss")


def completed_progress(op: Operation, result: Mapping[str, Any]) -> Progress:
    """The final progress of a completed training, from its result (not from the last polled update,
    which a host may have sent epochs before the end): 100 %, the epochs trained, the test metrics."""
    raw_metrics = result.get("test_metrics")
    metrics = {
        key: float(value)
        for key, value in (raw_metrics.items() if isinstance(raw_metrics, Mapping) else ())
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    trained = result.get("epochs_trained")
    epoch = trained if isinstance(trained, int) and trained > 0 else op.progress.epoch
    headline = ", ".join(f"{k}={metrics[k]:.4f}" for k in _HEADLINE_KEYS if k in metrics) or "n/a"
    return Progress(
        percentage=100.0,
        phase="completed",
        message=f"completed: {headline}",
        epoch=epoch,
        total_epochs=(op.progress.total_epochs or _requested_epochs(op) or epoch)
        if epoch is not None
        else None,
        metrics=metrics or op.progress.metrics,
    )


def ended_progress(progress: Progress, phase: str, message: str) -> Progress:
    """The last progress of a failed or cancelled training: where it stopped, and why."""
    return dataclasses.replace(progress, phase=phase, message=message)


def cancelled_message(progress: Progress) -> str:
    if progress.epoch is not None and progress.total_epochs:
        return f"cancelled at epoch {progress.epoch}/{progress.total_epochs}"
    return f"cancelled during {progress.phase}" if progress.phase not in ("queued", "") else "cancelled"


def _requested_epochs(op: Operation) -> int | None:
    overrides = op.request.get("overrides") if isinstance(op.request, Mapping) else None
    epochs = overrides.get("epochs") if isinstance(overrides, Mapping) else None
    return epochs if isinstance(epochs, int) else None
