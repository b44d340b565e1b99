"""``modelyard commands``: the training programs registered as command templates: list, show, validate, run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from backend.cli.failures import EXIT_BAD_INPUT, CliFailure
from backend.cli.options import (
    cli_env,
    data_dir_option,
    models_dir_option,
    optional_server_option,
    runs_dir_option,
)
from backend.cli.progress_display import TrainingProgressDisplay
from backend.cli.remote_training import submit_and_follow
from shared.contracts.commands import CommandView
from shared.contracts.errors import first_error

commands_dir_option = click.option(
    "--commands-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MODELYARD_COMMANDS_DIR",
    default="commands",
    show_default=True,
    show_envvar=True,
    help="Folder of command templates (one YAML file per training program).",
)


@click.group(name="commands")
def commands_group() -> None:
    """Command templates: a training program of your own (``python train.py …``, ``rave train …``)
    registered by the operator as a YAML file, run as a managed training with typed params."""


@commands_group.command(name="list")
@commands_dir_option
@optional_server_option("Without it the local commands folder is read.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def commands_list(ctx: click.Context, commands_dir: Path, server: str | None, as_json: bool) -> None:
    """List the command templates, valid or not (an invalid one shows its error).

    \b
    Examples:
      modelyard commands list
      modelyard commands list --server http://127.0.0.1:8000
    """
    views = _remote_list(ctx, server) if server else _local_views(commands_dir)
    if as_json:
        click.echo(json.dumps([v.model_dump(mode="json") for v in views], indent=2))
        return
    if not views:
        click.echo(f"no commands in {server or commands_dir}")
        return
    table = Table(title=f"Commands in {server or commands_dir}", title_justify="left")
    for column in ("name", "params", "dataset", "valid", "description / error"):
        table.add_column(column)
    for view in views:
        valid = "[green]yes[/]" if view.valid else "[red]no[/]"
        text = view.description if view.valid else (view.error or "")
        table.add_row(view.name, ", ".join(view.params), view.dataset, valid, text)
    Console().print(table)


@commands_group.command(name="show")
@click.argument("name")
@commands_dir_option
@optional_server_option("Without it the local commands folder is read.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def commands_show(
    ctx: click.Context, name: str, commands_dir: Path, server: str | None, as_json: bool
) -> None:
    """One command: its params (type, default, range, choices), dataset rule, metrics and artefacts.

    \b
    Example:
      modelyard commands show toy
    """
    if server:
        with cli_env(ctx).client(server) as client:
            view = CommandView.model_validate(client.get_json(f"/api/v1/commands/{name}"))
    else:
        view = _local_view(commands_dir, name)
    if as_json:
        click.echo(view.model_dump_json(indent=2))
        return
    console = Console()
    console.print(f"[bold]{view.name}[/]: {view.description}")
    console.print(f"dataset: {view.dataset}; metrics: {', '.join(view.metrics)}; artefacts: {view.artifacts}")
    table = Table(title="params", title_justify="left")
    for column in ("name", "type", "default", "range / choices", "description"):
        table.add_column(column)
    for param, spec in view.params.items():
        bounds = ", ".join(spec.choices) if spec.choices else _range(spec.min, spec.max)
        default = "(required)" if spec.default is None else json.dumps(spec.default)
        table.add_row(param, spec.type, default, bounds, spec.description)
    console.print(table)


@commands_group.command(name="validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def commands_validate(file: Path) -> None:
    """Check a command template; a bad one prints the line and field at fault and exits with code 2.

    \b
    Example:
      modelyard commands validate commands/toy.yaml
    """
    from shared.trainkit.errors import TrainkitError
    from shared.trainkit.workloads.command.template import load_template_file

    try:
        template = load_template_file(file)
    except TrainkitError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    click.echo(
        f"{file}: valid command {template.name!r}: {len(template.params)} params, dataset {template.dataset}, "
        f"metrics {', '.join(sorted(template.metrics))}"
    )


RUN_HELP = """Run the command template NAME as a managed training: its output parsed into metrics, its
kept files stored as the model {NAME}/{--name or NAME}_vN.

Without a server it runs here, in-process (Ctrl-C stops the program's whole process group, exit 130);
with --server (or MODELYARD_SERVER) it is submitted to the backend and followed live.

\b
Examples:
  modelyard commands run toy -p steps=300 -p lr=0.005
  modelyard commands run toy -p steps=2000 --name long-run --server http://127.0.0.1:8000

Exit codes: 0 completed (or left running on the server), 1 failed, 2 bad input, 3 server
unreachable, 130 cancelled.
"""


@commands_group.command(name="run", help=RUN_HELP)
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A param (repeatable).")
@click.option("--dataset", help="A file or folder of the data folder, for commands that take one.")
@click.option(
    "--name",
    "run_name",
    help="The experiment's name (names the stored model and, in-process, the run folder).",
)
@click.option(
    "--execution-mode", type=click.Choice(["local", "host", "auto"]), help="With --server: where it runs."
)
@optional_server_option("Without it the program runs here.")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Show live progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@commands_dir_option
@data_dir_option
@models_dir_option
@runs_dir_option
@click.pass_context
def commands_run(ctx: click.Context, /, **options: Any) -> None:
    command = {"name": options["name"], "params": parse_params(options["params"])}
    if options["dataset"]:
        command["dataset"] = options["dataset"]
    if options["server"]:
        _run_remote(ctx, options, command)
    else:
        _run_local(options, command)


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is read as JSON when it parses (``300``, ``0.01``, ``true``), else text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliFailure(f"--param {pair!r}: write KEY=VALUE, e.g. -p steps=300", EXIT_BAD_INPUT)
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params[key] = value if isinstance(value, bool | int | float | str) else raw
    return params


def _run_remote(ctx: click.Context, options: dict[str, Any], command: dict[str, Any]) -> None:
    body: dict[str, Any] = {"workload": "command", "command": command}
    if options["run_name"]:
        body["name"] = options["run_name"]
    if options["execution_mode"]:
        body["execution_mode"] = options["execution_mode"]
    submit_and_follow(
        cli_env(ctx), options["server"], body, follow=options["follow"], as_json=options["as_json"]
    )


def _run_local(options: dict[str, Any], command: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from backend.cli.local_training import new_run_name, print_local_result, run_local_training
    from shared.contracts.training import TrainingRequest
    from shared.trainkit.errors import TrainkitError
    from shared.trainkit.executor import TrainingExecutor
    from shared.trainkit.storage.model_storage import ModelStorage

    try:
        request = TrainingRequest(workload="command", command=command, name=options["run_name"])
    except ValidationError as exc:
        where, message = first_error(exc)
        raise CliFailure(f"{where}: {message}", EXIT_BAD_INPUT) from exc
    executor = TrainingExecutor(
        options["data_dir"],
        ModelStorage(options["models_dir"]),
        run_root=options["runs_dir"],
        commands_dir=options["commands_dir"],
    )
    try:
        executor.validate(request)
    except TrainkitError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    run_name = new_run_name(name=options["run_name"])
    display = TrainingProgressDisplay(
        Console(stderr=True), enabled=options["follow"] and not options["as_json"]
    )
    result = run_local_training(executor, request, display, run_name=run_name)
    print_local_result(result, as_json=options["as_json"], run_dir=Path(options["runs_dir"]) / run_name)


def _remote_list(ctx: click.Context, server: str) -> list[CommandView]:
    with cli_env(ctx).client(server) as client:
        data = client.get_json("/api/v1/commands")
    return [CommandView.model_validate(item) for item in data.get("items", [])]


def _local_views(commands_dir: Path) -> list[CommandView]:
    from backend.adapters.command_files import CommandFiles

    return CommandFiles(commands_dir).list_commands()


def _local_view(commands_dir: Path, name: str) -> CommandView:
    from backend.adapters.command_files import CommandFiles
    from shared.trainkit.errors import TrainkitError

    try:
        return CommandFiles(commands_dir).get(name)
    except TrainkitError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f"{'' if low is None else f'{low:g}'} … {'' if high is None else f'{high:g}'}"
