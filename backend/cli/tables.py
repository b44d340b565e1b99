"""What the CLI prints: rich tables of results, operations, models and versions (no logic, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table

from shared.contracts.aliases import AliasList
from shared.contracts.api import ModelVersionView
from shared.contracts.operations import OperationStatusName, OperationView, ProjectView


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


def result_rows(result: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Device, epochs, stop reason, best epoch and val loss, then the test metrics (per-class F1 too)."""
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
    return rows


def model_rows(model: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The stored model: ``strategy/name vN`` and where it lies."""
    named = f"{model.get('strategy', '?')}/{model.get('name', '?')} v{model.get('version', '?')}"
    return [("model", named), ("model path", model.get("path"))]


def result_table(result: Mapping[str, Any]) -> Table:
    """Device, epochs, stop reason, best val loss, then the test metrics (per-class F1 too)."""
    table = Table(title="Training result", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    _add_rows(table, result_rows(result))
    return table


def _add_rows(table: Table, rows: Iterable[tuple[str, Any]]) -> None:
    for label, value in rows:
        if value is not None:
            table.add_row(label, _num(value))


def operations_table(operations: Iterable[OperationView]) -> Table:
    ops = list(operations)
    table = Table(title="Operations", title_justify="left")
    # Ids are what users copy into `ops show|follow|cancel`: never shorten them.
    table.add_column("id", no_wrap=True, min_width=max((len(op.operation_id) for op in ops), default=2))
    table.add_column("status", no_wrap=True)
    table.add_column("project")
    table.add_column("name")
    table.add_column("tags")
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("phase")
    table.add_column("mode")
    table.add_column("created", no_wrap=True)
    # Who submitted, once tokens are in use (a server without tokens has no names to show).
    by = any(op.submitted_by for op in ops)
    if by:
        table.add_column("by")
    for op in ops:
        table.add_row(
            op.operation_id,
            op.status.value,
            op.project,
            op.name or "-",
            ", ".join(op.tags) or "-",
            f"{op.progress.percentage:.0f}%",
            op.progress.phase,
            op.execution_mode,
            op.created_at.strftime("%m-%d %H:%M"),
            *([op.submitted_by or "-"] if by else []),
        )
    return table


def projects_table(projects: Iterable[ProjectView]) -> Table:
    """A row per project: its operations in all, then per status (the statuses any project has)."""
    items = list(projects)
    statuses = [s for s in OperationStatusName if any(p.by_status.get(s) for p in items)]
    table = Table(title="Projects", title_justify="left")
    table.add_column("project", no_wrap=True)
    table.add_column("total", justify="right")
    for status in statuses:
        table.add_column(status.value, justify="right")
    table.add_column("last activity", no_wrap=True)
    for project in items:
        counts = [str(project.by_status.get(s, 0)) for s in statuses]
        table.add_row(project.project, str(project.total), *counts, _when(project.last_activity))
    return table


def operation_table(op: OperationView) -> Table:
    """Everything about one operation: status and timings, then its result (model, metrics) when it
    completed, its error when it failed, and every warning (the server's and the training's)."""
    table = Table(title=f"Operation {op.operation_id}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    progress = op.progress
    rows: list[tuple[str, Any]] = [
        ("type", op.type),
        ("workload", op.workload),
        ("project", op.project),
        ("name", op.name),
        ("tags", ", ".join(op.tags) or None),
        ("status", op.status.value),
        (
            "execution mode",
            f"{op.execution_mode} ({op.mode_reason})" if op.mode_reason else op.execution_mode,
        ),
        ("device", op.device),
        ("host", op.host_url),
        ("queue position", op.queue_position),
        ("progress", f"{progress.percentage:.1f}% {progress.phase}" + _suffix(progress.message)),
        ("epoch", f"{progress.epoch}/{progress.total_epochs}" if progress.epoch else None),
        ("created", _when(op.created_at)),
        ("submitted by", op.submitted_by),
        ("started", _when(op.started_at) if op.started_at else None),
        ("completed", _when(op.completed_at) if op.completed_at else None),
        ("cancelled by", op.cancelled_by),
    ]
    if op.result is None:  # once there is a result its metrics say more than the last progress
        rows += [(f"metric {k}", v) for k, v in progress.metrics.items()]
    _add_rows(table, rows + _outcome_rows(op))
    return table


def _outcome_rows(op: OperationView) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    result: Mapping[str, Any] = op.result.model_dump() if op.result else {}
    if isinstance(result.get("model"), Mapping):
        rows += model_rows(result["model"])
    # The operation's own device row already says where it ran.
    rows += [(label, value) for label, value in result_rows(result) if label != "device" or not op.device]
    if op.error is not None:
        rows.append(("error", f"{op.error.code}: {op.error.message}"))
        rows += [(f"error {key}", value) for key, value in op.error.details.items()]
    warnings = list(op.warnings)
    extra = result.get("warnings")
    if isinstance(extra, list):
        warnings += [str(w) for w in extra if str(w) not in warnings]
    rows += [("warning", w) for w in warnings]
    return rows


def _suffix(message: str) -> str:
    return f": {message}" if message else ""


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


def alias_tables(listing: AliasList) -> Group:
    current = Table(title=f"{listing.strategy}/{listing.name} aliases", title_justify="left")
    for column in ("alias", "version", "set by", "set"):
        current.add_column(column)
    for a in listing.aliases:
        current.add_row(a.alias, f"v{a.version}", a.set_by or "-", _when(a.set_at))
    history = Table(title="history (newest first)", title_justify="left")
    for column in ("when", "alias", "change", "by"):
        history.add_column(column)
    for c in listing.history:
        before = f"v{c.from_version}" if c.from_version is not None else "-"
        after = f"v{c.to_version}" if c.to_version is not None else "-"
        history.add_row(_when(c.at), c.alias, f"{c.action} {before} -> {after}", c.by or "-")
    return Group(current, history)


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
        test = test_metrics_of(v.metrics.model_dump())
        marker = " (latest)" if v.version == latest else ""
        table.add_row(
            f"v{v.version}{marker}",
            _when(v.created_at),
            _num(test.get("accuracy")),
            _num(test.get("macro_f1")),
            v.path,
        )
    return table
