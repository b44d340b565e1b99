"""Domain → wire: the explicit mapping from Operation to OperationView (and its metrics)."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from backend.domain.attempts import Attempt
from backend.domain.operations import Operation, OperationStatus, ProjectSummary
from shared.contracts.operations import (
    AttemptView,
    ErrorInfo,
    OperationMetrics,
    OperationStatusName,
    OperationView,
    ProgressView,
    ProjectView,
)
from shared.contracts.results import (
    Decision,
    HistoryRow,
    TimerStats,
    TrainingAnalysisView,
    TrainingResult,
    lenient,
)
from shared.trainkit.decisions import analyze


class OperationJson:
    """The JSON body of each recently polled operation, reused while the operation is unchanged.

    An :class:`Operation` is immutable: every change (a progress report, a status move) makes a new
    object, so "the same object as last time" means "the same body". A hundred pollers of one training
    then cost one mapping and serialization per progress report, not one per request (that was half
    the CPU of ``GET /api/v1/operations/{id}``). Used from the event loop only; the ``max_entries``
    most recently polled operations are kept."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._bodies: OrderedDict[str, tuple[Operation, bytes]] = OrderedDict()

    def body(self, op: Operation) -> bytes:
        """``operation_view(op)`` as JSON (a pending operation's queue position is not part of it)."""
        cached = self._bodies.get(op.id)
        if cached is not None and cached[0] is op:
            self._bodies.move_to_end(op.id)
            return cached[1]
        body = operation_view(op).model_dump_json().encode()
        self._bodies[op.id] = (op, body)
        self._bodies.move_to_end(op.id)
        if len(self._bodies) > self._max_entries:
            self._bodies.popitem(last=False)
        return body


def operation_view(op: Operation, positions: dict[str, int] | None = None) -> OperationView:
    position = (positions or {}).get(op.id) if op.status is OperationStatus.PENDING else None
    error = (
        ErrorInfo(code=op.error.code, message=op.error.message, details=op.error.details)
        if op.error
        else None
    )
    return OperationView(
        operation_id=op.id,
        type=op.type,
        status=OperationStatusName(op.status.value),
        execution_mode=op.execution_mode,
        mode_reason=op.mode_reason,
        device=op.device,
        queue_position=position,
        progress=ProgressView(**op.progress.as_dict()),
        created_at=op.created_at,
        started_at=op.started_at,
        completed_at=op.completed_at,
        result=training_result(op.result),
        error=error,
        warnings=list(op.warnings),
        idempotency_key=op.idempotency_key,
        host_url=op.host_url,
        host_session_id=op.host_session_id,
        last_heartbeat=op.heartbeat_at,
        attempts=op.attempts,
        project=op.project,
        name=op.name,
        tags=list(op.tags),
        workload=op.workload,
        submitted_by=op.submitted_by,
        cancelled_by=op.cancelled_by,
        max_retries=op.max_retries,
        attempt_history=[attempt_view(a) for a in op.attempt_log],
    )


def attempt_view(attempt: Attempt) -> AttemptView:
    error = None
    if attempt.error_code is not None:
        error = ErrorInfo(code=attempt.error_code, message=attempt.error_message or "")
    return AttemptView(
        number=attempt.number,
        outcome=attempt.outcome,
        where=attempt.where,
        started_at=attempt.started_at,
        ended_at=attempt.ended_at,
        error=error,
        from_checkpoint=attempt.from_checkpoint,
        resumed_from_epoch=attempt.resumed_from_epoch,
        trigger=attempt.trigger,
    )


def training_result(result: dict[str, Any] | None) -> TrainingResult | None:
    """The stored result as its wire model. A result is stored as whatever a host sent: a known key
    holding a value of the wrong type is left out (and logged) rather than failing the whole view."""
    return None if result is None else lenient(TrainingResult, result)


def project_view(summary: ProjectSummary) -> ProjectView:
    return ProjectView(
        project=summary.project,
        total=summary.total,
        by_status={OperationStatusName(s.value): n for s, n in summary.by_status.items()},
        last_activity=summary.last_activity,
    )


def _analysis(history: list[dict[str, Any]]) -> dict[str, Any]:
    if not history:
        return {}
    if "epoch" not in history[0] and "step" in history[0]:
        return _step_analysis(history)
    return dict(analyze(history).as_dict())


def _step_analysis(history: list[dict[str, Any]]) -> dict[str, Any]:
    """A command run's rows are keyed by step: the best row by val_loss (loss when it never validated)."""
    monitor = "val_loss" if any(_is_number(row.get("val_loss")) for row in history) else "loss"
    scored = [row for row in history if _is_number(row.get(monitor)) and math.isfinite(row[monitor])]
    if not scored:
        return {"monitor": monitor, "steps": len(history)}
    best = min(scored, key=lambda row: row[monitor])
    return {
        "monitor": monitor,
        "best_step": best["step"],
        f"best_{monitor}": best[monitor],
        "best_val_loss": best.get("val_loss"),
        "last_step": history[-1]["step"],
    }


def operation_metrics(op: Operation) -> OperationMetrics:
    history = [dict(row) for row in op.history]
    analysis = _analysis(history)
    best_val = analysis.get("best_val_loss")
    return OperationMetrics(
        operation_id=op.id,
        status=OperationStatusName(op.status.value),
        history=[HistoryRow.model_validate(row) for row in history],
        best_epoch=analysis.get("best_epoch"),
        best_val_loss=float(best_val) if best_val is not None else None,
        plateau=bool(analysis.get("plateau", False)),
        overfitting=bool(analysis.get("overfitting", False)),
        decisions=[Decision.model_validate(dict(d)) for d in op.decisions],
        analysis=TrainingAnalysisView.model_validate(analysis),
        telemetry={name: TimerStats.model_validate(stats) for name, stats in _telemetry(op.result).items()},
    )


def _telemetry(result: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """The timer rollups an execution put into its result; malformed entries are left out (the result
    is stored as whatever a host sent)."""
    raw = (result or {}).get("telemetry")
    if not isinstance(raw, dict):
        return {}
    return {
        str(name): {str(k): float(v) for k, v in stats.items() if _is_number(v)}
        for name, stats in raw.items()
        if isinstance(stats, dict)
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
