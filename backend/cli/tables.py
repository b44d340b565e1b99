"""What the CLI prints: rich tables of results, operations, models and versions (no logic, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.table import Table

from shared.contracts.api import ModelVersionView
from shared.contracts.operations import OperationView


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return value.strftime("%Y-%m-%d %H:%M:%S")


def model_location(model: Mapping[str, Any]) -> str:
    """``models/{strategy}/{NAME}_v{N}`` style: the path when known, else strategy/name vN."""
    if model.get("path"):
        return str(model["path"])
    return f"{model.get('strategy', '?')}/{model.get('name', '?')}_v{model.get('version', '?')}"


def result_table(result: Mapping[str, Any]) -> Table:
    """Device, epochs, stop reason, best val loss, then the test metrics (per-class F1 too)."""
    table = Table(title="Training result", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    test: Mapping[str, Any] = result.get("test_metrics") or {}
    rows: list[tuple[str, Any]] = [
        ("device", result.get("device")),
        ("epochs", result.get("epochs_trained")),
        ("stop reason", result.get("stop_reason")),
        ("best val loss", result.get("best_val_loss")),
        ("best epoch", result.get("best_epoch")),
    ]
    for key, label in (("accuracy", "test accuracy"), ("macro_f1", "macro F1"), ("rmse", "test RMSE")):
        if key in test:
            rows.append((label, test[key]))
    for cls, scores in (test.get("per_class") or {}).items():
        if isinstance(scores, Mapping) and "f1" in scores:
            rows.append((f"F1 {cls}", scores["f1"]))
    if "duration_s" in result:
        rows.append(("duration (s)", result["duration_s"]))
    for label, value in rows:
        if value is not None:
            table.add_row(label, _num(value))
    return table


def operations_table(operations: Iterable[OperationView]) -> Table:
    ops = list(operations)
    table = Table(title="Operations", title_justify="left")
    # Ids are what users copy into `ops show|follow|cancel`: never shorten them.
    table.add_column("id", no_wrap=True, min_width=max((len(op.operation_id) for op in ops), default=2))
    table.add_column("status", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("phase")
    table.add_column("mode")
    table.add_column("created", no_wrap=True)
    for op in ops:
        table.add_row(
            op.operation_id,
            op.status.value,
            f"{op.progress.percentage:.0f}%",
            op.progress.phase,
            op.execution_mode,
            op.created_at.strftime("%m-%d %H:%M"),
        )
    return table


def operation_table(op: OperationView) -> Table:
    table = Table(title=f"Operation {op.operation_id}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    rows: list[tuple[str, Any]] = [
        ("type", op.type),
        ("status", op.status.value),
        (
            "execution mode",
            f"{op.execution_mode} ({op.mode_reason})" if op.mode_reason else op.execution_mode,
        ),
        ("device", op.device),
        ("queue position", op.queue_position),
        ("progress", f"{op.progress.percentage:.1f}% {op.progress.phase}: {op.progress.message}"),
        ("epoch", f"{op.progress.epoch}/{op.progress.total_epochs}" if op.progress.epoch else None),
        ("created", _when(op.created_at)),
        ("started", _when(op.started_at) if op.started_at else None),
        ("completed", _when(op.completed_at) if op.completed_at else None),
        ("error", f"{op.error.code}: {op.error.message}" if op.error else None),
    ]
    rows += [(f"metric {k}", v) for k, v in op.progress.metrics.items()]
    rows += [("warning", w) for w in op.warnings]
    for label, value in rows:
        if value is not None:
            table.add_row(label, _num(value))
    return table


def models_table(models: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="Models", title_justify="left")
    for column in ("strategy", "name", "latest", "versions", "updated"):
        table.add_column(column)
    for model in models:
        table.add_row(
            str(model.get("strategy")),
            str(model.get("name")),
            f"v{model['latest_version']}" if model.get("latest_version") is not None else "-",
            str(model.get("versions", "-")),
            _when(model.get("updated_at")),
        )
    return table


def test_metrics_of(metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    """The test metrics inside a version's ``metrics.json`` (``{"test": …, "fit": …}``) or a flat dict."""
    for key in ("test", "test_metrics"):
        if isinstance(metrics.get(key), Mapping):
            return metrics[key]  # type: ignore[no-any-return]
    return metrics


def versions_table(
    strategy: str, name: str, versions: Iterable[ModelVersionView], latest: int | None
) -> Table:
    table = Table(title=f"{strategy}/{name}", title_justify="left")
    for column in ("version", "created", "accuracy", "macro F1", "path"):
        table.add_column(column)
    for v in versions:
        test = test_metrics_of(v.metrics)
        marker = " (latest)" if v.version == latest else ""
        table.add_row(
            f"v{v.version}{marker}",
            _when(v.created_at),
            _num(test.get("accuracy")),
            _num(test.get("macro_f1")),
            v.path,
        )
    return table
