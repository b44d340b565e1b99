"""``modelyard sweep …``: start a sweep from a YAML file, show it with a live table, cancel it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from backend.cli.failures import EXIT_BAD_INPUT, EXIT_FAILED, CliFailure
from backend.cli.options import cli_env, server_option
from shared.contracts.sweeps import SweepView

_DONE = ("completed", "failed", "cancelled")


@click.group(name="sweep")
def sweep_group() -> None:
    """Sweeps: hyperparameter searches (Optuna) over a training, each trial an operation."""


@sweep_group.command(name="start")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_option
@click.option("--no-follow", is_flag=True, help="Print the sweep id and return at once.")
@click.pass_context
def sweep_start(ctx: click.Context, file: Path, server: str, no_follow: bool) -> None:
    """Start the sweep FILE describes (YAML or JSON: base, space, objective, n_trials …) and follow it
    with a live table of its trials until it ends.

    \b
    Example (sweep.yaml):
      base: {strategy: trend_momentum, symbol: EURUSD, timeframe: 1h, overrides: {epochs: 5}}
      space:
        overrides.learning_rate: {type: float, low: 0.0001, high: 0.1, log: true}
        strategy.labels.threshold: {type: float, low: 0.01, high: 0.03}
      objective: {metric: val_loss, direction: minimize}
      n_trials: 20
      parallelism: 2

      modelyard sweep start sweep.yaml --server http://127.0.0.1:8000
    """
    try:
        body = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CliFailure(f"{file}: not readable as YAML: {exc}", EXIT_BAD_INPUT) from exc
    if not isinstance(body, dict):
        raise CliFailure(f"{file}: expected a mapping (base, space, objective, n_trials …)", EXIT_BAD_INPUT)
    with cli_env(ctx).client(server) as client:
        started = client.start_sweep(body)
        click.echo(f"sweep {started.sweep_id} started: {server.rstrip('/')}/#/sweeps/{started.sweep_id}")
        if not no_follow:
            _follow(ctx, server, started.sweep_id)


@sweep_group.command(name="show")
@click.argument("sweep_id", required=False)
@server_option
@click.option("--follow", is_flag=True, help="Keep the table live until the sweep ends.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def sweep_show(ctx: click.Context, sweep_id: str | None, server: str, follow: bool, as_json: bool) -> None:
    """Show a sweep's trials (params, objective, status), its best trial and parameter importances;
    without SWEEP_ID, list the sweeps.

    \b
    Examples:
      modelyard sweep show
      modelyard sweep show sw3fa9c2d1e0 --follow
    """
    with cli_env(ctx).client(server) as client:
        if sweep_id is None:
            listing = client.list_sweeps()
            if as_json:
                click.echo(listing.model_dump_json(indent=2))
            else:
                Console().print(sweeps_table(listing.items))
            return
        if follow:
            _follow(ctx, server, sweep_id)
            return
        view = client.get_sweep(sweep_id)
    if as_json:
        click.echo(view.model_dump_json(indent=2))
    else:
        Console().print(sweep_renderable(view))


@sweep_group.command(name="cancel")
@click.argument("sweep_id")
@server_option
@click.pass_context
def sweep_cancel(ctx: click.Context, sweep_id: str, server: str) -> None:
    """Cancel a sweep: its running trials are cancelled and no new one starts.

    \b
    Example:
      modelyard sweep cancel sw3fa9c2d1e0
    """
    with cli_env(ctx).client(server) as client:
        view = client.cancel_sweep(sweep_id)
    click.echo(f"sweep {view.sweep_id}: {view.status.value}")


def _follow(ctx: click.Context, server: str, sweep_id: str) -> None:
    env = cli_env(ctx)
    with env.client(server) as client:
        view = client.get_sweep(sweep_id)
        with Live(sweep_renderable(view), console=Console(), refresh_per_second=4, transient=False) as live:
            while view.status.value not in _DONE:
                time.sleep(max(env.poll_interval_s, 0.1))
                view = client.get_sweep(sweep_id)
                live.update(sweep_renderable(view))
    if view.status.value == "failed":
        raise CliFailure(f"sweep {sweep_id} failed: {view.error}", EXIT_FAILED)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if not isinstance(value, str) else value


def sweep_renderable(view: SweepView) -> Group:
    trials = Table(
        title=f"sweep {view.sweep_id} · {view.status.value} · {view.objective.metric} ({view.objective.direction})",
        title_justify="left",
    )
    params = list(view.space)
    for column in ("trial", "status", "objective", *params, "operation"):
        trials.add_column(column)
    best_number = view.best.number if view.best else None
    for t in view.trials:
        mark = " ★" if t.number == best_number else ""
        objective = _fmt(t.objective) if t.objective is not None else "-"
        where = t.operation_id or t.error or "-"  # no operation: why (its training was refused)
        trials.add_row(
            f"{t.number}{mark}", t.status, objective, *(_fmt(t.params.get(p)) for p in params), where
        )
    lines: list[Any] = [trials]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(view.counts.items())) or "no trials yet"
    lines.append(f"{len(view.trials)}/{view.n_trials} trials ({counts}), {view.parallelism} at once")
    if view.best is not None:
        lines.append(f"best: trial {view.best.number}, {view.objective.metric} = {_fmt(view.best.objective)}, "
                     f"{json.dumps(view.best.params)}")  # fmt: skip
    if view.best_alias:
        lines.append(f"best model alias: {view.best_alias}")
    if view.importances:
        source = f" (from {view.importances_trials} completed trials)" if view.importances_trials else ""
        lines.append(
            "importances" + source + ": " + ", ".join(f"{k} {v:.2f}" for k, v in view.importances.items())
        )
    if view.error:
        lines.append(f"error: {view.error}")
    return Group(*lines)


def sweeps_table(items: list[SweepView]) -> Table:
    table = Table(title="Sweeps", title_justify="left")
    for column in ("sweep", "status", "objective", "trials", "best", "created"):
        table.add_column(column)
    for s in items:
        best = _fmt(s.best.objective) if s.best and s.best.objective is not None else "-"
        done = sum(s.counts.values())
        table.add_row(s.sweep_id, s.status.value, s.objective.metric, f"{done}/{s.n_trials}", best,
                      s.created_at.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    return table
