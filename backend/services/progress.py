"""Folding the executor's progress updates into an operation's live state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.domain.operations import Operation, Progress
from shared.contracts.training import ProgressUpdate

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
        changes["history"] = (*op.history, dict(epoch_metrics))
    decision = update.extra.get("decision")
    if isinstance(decision, dict) and len(op.decisions) < MAX_DECISIONS:
        changes["decisions"] = (*op.decisions, dict(decision))
    device = update.extra.get("device")
    if isinstance(device, str) and device:
        changes["device"] = device
    return op.with_changes(**changes)
