"""``modelyard train``: in-process without a server, submitted to the backend with ``--server``."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from backend.cli.catalog_commands import resolve_strategy_file
from backend.cli.failures import EXIT_BAD_INPUT, CliFailure
from backend.cli.options import (
    check_run_name,
    check_slug,
    cli_env,
    data_dir_option,
    models_dir_option,
    optional_server_option,
    runs_dir_option,
    strategies_dir_option,
)
from backend.cli.progress_display import TrainingProgressDisplay
from backend.cli.remote_training import submit_and_follow
from shared.contracts.errors import first_error
from shared.contracts.training import TabularSpec, TrainingOverrides, TrainingRequest, Workload

_DATE = click.DateTime(formats=["%Y-%m-%d"])

TRAIN_HELP = """Train a model on STRATEGY: a path to a strategy YAML file, or the name of one in the
strategies folder. With --workload tabular, STRATEGY only labels the run: the model is
stored under tabular/{DATASET}_{TARGET}.

Without a server the training runs here, in-process, with a live progress bar; Ctrl-C cancels it
cleanly (exit code 130). With --server (or MODELYARD_SERVER) it is submitted to the backend and
followed live; Ctrl-C then asks whether to cancel it on the server (yes: exit 130; no: it is left
running there, exit 0, and `modelyard ops follow ID` picks it up again).

\b
Examples:
  modelyard train strategies/trend_momentum.yaml --symbol EURUSD --timeframe 1h
  modelyard train trend_momentum --symbol EURUSD --timeframe 1h --epochs 5 --seed 7
  modelyard train trend_momentum --symbol EURUSD --timeframe 1h --server http://127.0.0.1:8000
  modelyard train iris --workload tabular --dataset iris.csv --target species --epochs 10
  modelyard train trend_momentum --symbol EURUSD --timeframe 1h --server http://127.0.0.1:8000 \\
      --project fx --name baseline --tag gpu --tag baseline

--project and --tag are recorded by the server (`modelyard ops list --project fx --tag gpu`,
`modelyard projects`); a run in this process has no operation record, so it ignores them.

Exit codes: 0 trained (or left running on the server), 1 the server's training failed, 2 bad input,
3 server unreachable, 130 cancelled.
"""


@click.command(name="train", help=TRAIN_HELP)
@click.argument("strategy")
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    metavar="SYMBOL",
    help="Symbol to train on, e.g. EURUSD (repeatable).",
)
@click.option(
    "--timeframe", "timeframes", multiple=True, metavar="TF", help="Timeframe, e.g. 1h (repeatable)."
)
@click.option("--start-date", type=_DATE, help="First day of data to use (YYYY-MM-DD).")
@click.option("--end-date", type=_DATE, help="Last day of data to use (YYYY-MM-DD).")
@click.option("--epochs", type=click.IntRange(1, 10_000), help="Maximum epochs (overrides the strategy).")
@click.option("--batch-size", type=click.IntRange(1, 65_536), help="Samples per batch.")
@click.option("--learning-rate", type=click.FloatRange(0, 10, min_open=True), help="Optimizer learning rate.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Random seed.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Device (auto: CUDA > MPS > CPU)."
)
@click.option(
    "--workload",
    type=click.Choice(["strategy", "tabular"]),
    default="strategy",
    show_default=True,
    help="strategy (candles + strategy file) or tabular (any CSV with a target column).",
)
@click.option("--dataset", help="tabular: CSV file name in the data folder.")
@click.option("--target", help="tabular: name of the target column.")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default="classification",
    show_default=True,
    help="tabular: what to learn.",
)
@click.option(
    "--execution-mode", type=click.Choice(["local", "host", "auto"]), help="With --server: where it runs."
)
@click.option(
    "--project",
    callback=check_slug,
    help="With --server: the project the training belongs to (default: 'default').",
)
@click.option(
    "--name",
    callback=check_run_name,
    help="The experiment's name, shown by `ops list` (an in-process run names its run record with it).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    callback=check_slug,
    metavar="TAG",
    help="With --server: a tag of the training (repeatable, at most 20).",
)
@optional_server_option("Without it the training runs in this process.")
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Show live progress. With --server, --no-follow returns as soon as the server accepted it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (no progress bar).")
@data_dir_option
@models_dir_option
@strategies_dir_option
@runs_dir_option
@click.pass_context
def train_command(ctx: click.Context, /, **options: Any) -> None:
    if options["server"]:
        _train_remote(ctx, options)
    else:
        _train_local(ctx, options)


def _overrides(options: dict[str, Any]) -> TrainingOverrides:
    keys = ("epochs", "batch_size", "learning_rate", "seed", "device")
    return TrainingOverrides(**{k: options[k] for k in keys if options[k] is not None})


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _tabular(options: dict[str, Any]) -> TabularSpec:
    if not options["dataset"] or not options["target"]:
        raise CliFailure("--workload tabular needs --dataset FILE.csv and --target COLUMN", EXIT_BAD_INPUT)
    return TabularSpec(dataset=options["dataset"], target=options["target"], task=options["task"])


def _require_market(options: dict[str, Any]) -> None:
    if not options["symbols"] or not options["timeframes"]:
        raise CliFailure(
            "a strategy training needs --symbol and --timeframe, e.g. --symbol EURUSD --timeframe 1h"
        )


def local_request(options: dict[str, Any]) -> TrainingRequest:
    """The executor's request: the strategy file's text travels inline, named by its file."""
    common: dict[str, Any] = {
        "start_date": _day(options["start_date"]),
        "end_date": _day(options["end_date"]),
        "overrides": _overrides(options),
        "name": options["name"],
    }
    try:
        if options["workload"] == "tabular":
            return TrainingRequest(
                workload=Workload.TABULAR,
                strategy_name=options["strategy"],
                tabular=_tabular(options),
                **common,
            )
        _require_market(options)
        path = resolve_strategy_file(options["strategy"], options["strategies_dir"])
        return TrainingRequest(
            strategy_name=path.stem,
            strategy_yaml=_read_text(path),
            symbols=list(options["symbols"]),
            timeframes=list(options["timeframes"]),
            **common,
        )
    except ValidationError as exc:
        raise CliFailure(f"invalid training request: {_first_error(exc)}", EXIT_BAD_INPUT) from exc


def remote_body(options: dict[str, Any]) -> dict[str, Any]:
    """``POST /api/v1/trainings`` body: an existing local file travels inline, else the name is sent."""
    body: dict[str, Any] = {"overrides": _overrides(options).model_dump(exclude_none=True)}
    for key in ("start_date", "end_date"):
        if options[key] is not None:
            body[key] = options[key].date().isoformat()
    if options["execution_mode"]:
        body["execution_mode"] = options["execution_mode"]
    if options["project"]:
        body["project"] = options["project"]
    if options["name"]:
        body["name"] = options["name"]
    if options["tags"]:
        body["tags"] = list(options["tags"])
    if options["workload"] == "tabular":
        body["workload"] = "tabular"
        body["tabular"] = _tabular(options).model_dump(mode="json")
        return body
    _require_market(options)
    path = Path(options["strategy"])
    if path.is_file():
        body["strategy_yaml"] = _read_text(path)
    else:
        body["strategy"] = options["strategy"]
    body["symbol"] = _one_or_many(options["symbols"])
    body["timeframe"] = _one_or_many(options["timeframes"])
    return body


def _train_local(ctx: click.Context, options: dict[str, Any]) -> None:
    from backend.cli.local_training import (
        create_executor,
        new_run_name,
        print_local_result,
        run_local_training,
    )

    request = local_request(options)
    env = cli_env(ctx)
    factory = env.executor_factory or create_executor
    executor = factory(options["data_dir"], options["models_dir"], options["runs_dir"])
    console = Console(stderr=True)
    display = TrainingProgressDisplay(console, enabled=options["follow"] and not options["as_json"])
    if options["project"] or options["tags"]:
        click.echo(
            "note: --project and --tag are recorded by a server; this in-process run ignores them", err=True
        )
    run_name = new_run_name(name=options["name"])
    result = run_local_training(executor, request, display, run_name=run_name)
    print_local_result(result, as_json=options["as_json"], run_dir=Path(options["runs_dir"]) / run_name)


def _train_remote(ctx: click.Context, options: dict[str, Any]) -> None:
    body = remote_body(options)
    submit_and_follow(
        cli_env(ctx), options["server"], body, follow=options["follow"], as_json=options["as_json"]
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliFailure(f"cannot read strategy file {path}: {exc}", EXIT_BAD_INPUT) from exc


def _one_or_many(values: tuple[str, ...]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _first_error(exc: ValidationError) -> str:
    where, message = first_error(exc)
    return f"{where or 'request'}: {message}"
