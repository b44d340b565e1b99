"""``modelyard models …``: the model store, locally (list, show) or on the backend (all of them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from backend.cli.failures import EXIT_BAD_INPUT, EXIT_FAILED, CliFailure
from backend.cli.options import cli_env, models_dir_option, optional_server_option, server_option
from backend.cli.tables import alias_tables, models_table, versions_table
from shared.contracts.api import ModelDetail, ModelMetrics, ModelVersionView
from shared.contracts.results import lenient

if TYPE_CHECKING:  # the store imports the executor package, which imports torch
    from shared.trainkit.storage import ModelStorage

_LOCAL = "Without it the local models folder is read."


@click.group(name="models")
def models_group() -> None:
    """Trained models: list, show versions, download an archive, export to ONNX, delete a version, aliases."""


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
@click.argument("version")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive path [default: NAME_vN.zip].",
)
@server_option
@click.pass_context
def models_download(
    ctx: click.Context, strategy: str, name: str, version: str, output: Path | None, server: str
) -> None:
    """Download one version (a number, or an alias such as production) as a zip of all its files.

    \b
    Examples:
      modelyard models download trend_momentum EURUSD_1h 2 -o model.zip
      modelyard models download trend_momentum EURUSD_1h production
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


@models_group.command(name="export")
@click.argument("strategy")
@click.argument("name")
@click.argument("version", type=click.IntRange(1))
@click.option(
    "--onnx",
    "as_onnx",
    is_flag=True,
    help="Export as an ONNX graph (the one format so far; needs the 'onnx' extra where it runs).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="ONNX file path [default: NAME_vN.onnx].",
)
@optional_server_option(_LOCAL)
@models_dir_option
@click.pass_context
def models_export(
    ctx: click.Context,
    strategy: str,
    name: str,
    version: int,
    as_onnx: bool,
    output: Path | None,
    server: str | None,
    models_dir: Path,
) -> None:
    """Export one version of a strategy or tabular model to ONNX.

    The graph takes ``features`` (float32, [batch, input_dim], normalised as the version's
    features.json says) and returns ``logits`` (classification) or ``prediction`` (regression).
    Command-training and plugin models cannot be exported; the error says why.

    \b
    Examples:
      modelyard models export trend_momentum EURUSD_1h 2 --onnx -o model.onnx
      modelyard models export tabular iris 1 --onnx --server http://127.0.0.1:8000
    """
    if not as_onnx:
        raise click.UsageError("choose the export format: --onnx (the only one so far)")
    target = output or Path(f"{name}_v{version}.onnx")
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("wb") as out:
            if server:
                with cli_env(ctx).client(server) as client:
                    size = client.export_model_onnx(strategy, name, version, out)
            else:
                data = _local_onnx(models_dir, strategy, name, version)
                out.write(data)
                size = len(data)
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


@models_group.group(name="alias")
def alias_group() -> None:
    """Aliases: stable names (production, staging) for one version of a model, on the backend."""


@alias_group.command(name="set")
@click.argument("strategy")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=click.IntRange(1))
@server_option
@click.pass_context
def alias_set(ctx: click.Context, strategy: str, name: str, alias: str, version: int, server: str) -> None:
    """Point ALIAS at VERSION (creates it, or moves it; the move is recorded).

    \b
    Example:
      modelyard models alias set trend_momentum EURUSD_1h production 3
    """
    with cli_env(ctx).client(server) as client:
        change = client.set_model_alias(strategy, name, alias, version)
    moved = f" (was v{change.from_version})" if change.from_version is not None else ""
    click.echo(f"{strategy}/{name} {alias} -> v{version}{moved}")


@alias_group.command(name="rm")
@click.argument("strategy")
@click.argument("name")
@click.argument("alias")
@server_option
@click.pass_context
def alias_rm(ctx: click.Context, strategy: str, name: str, alias: str, server: str) -> None:
    """Remove ALIAS (the version stays).

    \b
    Example:
      modelyard models alias rm trend_momentum EURUSD_1h staging
    """
    with cli_env(ctx).client(server) as client:
        client.remove_model_alias(strategy, name, alias)
    click.echo(f"removed alias {alias} of {strategy}/{name}")


@alias_group.command(name="list")
@click.argument("strategy")
@click.argument("name")
@server_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def alias_list(ctx: click.Context, strategy: str, name: str, server: str, as_json: bool) -> None:
    """The model's aliases, and who moved which alias from where, when.

    \b
    Example:
      modelyard models alias list trend_momentum EURUSD_1h
    """
    with cli_env(ctx).client(server) as client:
        listing = client.model_aliases(strategy, name)
    if as_json:
        click.echo(listing.model_dump_json(indent=2))
        return
    Console().print(alias_tables(listing))


def _local_storage(models_dir: Path) -> ModelStorage:
    from shared.trainkit.storage import ModelStorage

    return ModelStorage(models_dir)


def _local_onnx(models_dir: Path, strategy: str, name: str, version: int) -> bytes:
    from shared.trainkit.errors import ExportUnavailableError, TrainkitError
    from shared.trainkit.storage.onnx_export import export_stored_model

    try:
        return export_stored_model(_local_storage(models_dir), strategy, name, version)
    except ExportUnavailableError as exc:
        raise CliFailure(exc.message, EXIT_FAILED) from exc
    except TrainkitError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc


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
