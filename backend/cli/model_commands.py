"""``modelyard models …``: the model store, locally (list, show) or on the backend (all of them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from backend.cli.failures import EXIT_BAD_INPUT, CliFailure
from backend.cli.options import cli_env, models_dir_option, optional_server_option, server_option
from backend.cli.tables import models_table, versions_table
from shared.contracts.api import ModelDetail, ModelMetrics, ModelVersionView
from shared.contracts.results import lenient

if TYPE_CHECKING:  # the store imports the executor package, which imports torch
    from shared.trainkit.storage import ModelStorage

_LOCAL = "Without it the local models folder is read."


@click.group(name="models")
def models_group() -> None:
    """Trained models: list, show versions, download an archive, delete a version."""


@models_group.command(name="list")
@optional_server_option(_LOCAL)
@models_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models_list(ctx: click.Context, server: str | None, models_dir: Path, as_json: bool) -> None:
    """List models with their latest version.

    \b
    Examples:
      modelyard models list
      modelyard models list --server http://127.0.0.1:8000
    """
    if server:
        with cli_env(ctx).client(server) as client:
            models = [m.model_dump(mode="json") for m in client.list_models()]
    else:
        models = [m.as_dict() for m in _local_storage(models_dir).list_models()]
    if as_json:
        click.echo(json.dumps(models, indent=2))
    elif not models:
        click.echo("no models yet: train one with `modelyard train`")
    else:
        Console().print(models_table(models))


@models_group.command(name="show")
@click.argument("strategy")
@click.argument("name")
@optional_server_option(_LOCAL)
@models_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models_show(
    ctx: click.Context, strategy: str, name: str, server: str | None, models_dir: Path, as_json: bool
) -> None:
    """Show every version of one model with its test metrics.

    \b
    Example:
      modelyard models show trend_momentum EURUSD_1h
    """
    if server:
        with cli_env(ctx).client(server) as client:
            detail = client.model_detail(strategy, name)
    else:
        detail = _local_detail(models_dir, strategy, name)
    if as_json:
        click.echo(detail.model_dump_json(indent=2))
        return
    latest = max((v.version for v in detail.versions), default=None)
    Console().print(versions_table(strategy, name, detail.versions, latest))


@models_group.command(name="download")
@click.argument("strategy")
@click.argument("name")
@click.argument("version", type=click.IntRange(1))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive path [default: NAME_vN.zip].",
)
@server_option
@click.pass_context
def models_download(
    ctx: click.Context, strategy: str, name: str, version: int, output: Path | None, server: str
) -> None:
    """Download one version as a zip of all its files.

    \b
    Example:
      modelyard models download trend_momentum EURUSD_1h 2 -o model.zip
    """
    target = output or Path(f"{name}_v{version}.zip")
    partial = target.with_name(f".{target.name}.part")
    try:
        with cli_env(ctx).client(server) as client, partial.open("wb") as out:
            size = client.download_model(strategy, name, version, out)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {target} ({size} bytes)")


@models_group.command(name="delete")
@click.argument("strategy")
@click.argument("name")
@click.argument("version", type=click.IntRange(1))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@server_option
@click.pass_context
def models_delete(ctx: click.Context, strategy: str, name: str, version: int, yes: bool, server: str) -> None:
    """Delete one version; the latest pointer moves to the highest remaining one.

    \b
    Example:
      modelyard models delete trend_momentum EURUSD_1h 1 --yes
    """
    if not yes:
        click.confirm(f"Delete {strategy}/{name} v{version} on {server}?", abort=True)
    with cli_env(ctx).client(server) as client:
        client.delete_model_version(strategy, name, version)
    click.echo(f"deleted {strategy}/{name} v{version}")


def _local_storage(models_dir: Path) -> ModelStorage:
    from shared.trainkit.storage import ModelStorage

    return ModelStorage(models_dir)


def _local_detail(models_dir: Path, strategy: str, name: str) -> ModelDetail:
    from shared.trainkit.errors import TrainkitError

    try:
        versions = _local_storage(models_dir).list_versions(strategy, name)
    except TrainkitError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    if not versions:
        raise CliFailure(f"no model {strategy}/{name} in {models_dir}: see `modelyard models list`")
    views = [
        ModelVersionView(
            strategy=v.strategy,
            name=v.name,
            version=v.version,
            path=v.path,
            created_at=v.created_at,
            metrics=lenient(ModelMetrics, v.metrics),
        )
        for v in versions
    ]
    return ModelDetail(strategy=strategy, name=name, versions=views)
