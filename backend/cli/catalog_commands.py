"""``modelyard data …`` and ``modelyard strategies …``: the local catalogue of candles and strategies.

trainkit is imported inside the commands: importing it loads torch, which ``--help`` does not need.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from backend.cli.failures import EXIT_BAD_INPUT, CliFailure
from backend.cli.options import cli_env, data_dir_option, server_option, strategies_dir_option


def resolve_strategy_file(strategy: str, strategies_dir: Path) -> Path:
    """A path to an existing file, else ``{strategies_dir}/{strategy}.yaml|.yml``, else a strategy whose
    ``name:`` is ``strategy``. Raises :class:`CliFailure` listing what exists."""
    from shared.trainkit.workloads.strategy.schema import list_strategies

    given = Path(strategy)
    if given.is_file():
        return given
    for suffix in (".yaml", ".yml"):
        candidate = strategies_dir / f"{strategy}{suffix}"
        if candidate.is_file():
            return candidate
    known = list_strategies(strategies_dir)
    for info in known:
        if info.valid and info.name == strategy:
            return Path(info.path)
    names = ", ".join(sorted({Path(i.path).stem for i in known})) or "none"
    raise CliFailure(
        f"no strategy file {strategy!r}: give a path to a YAML file or one of the strategies in "
        f"{strategies_dir} ({names})",
        EXIT_BAD_INPUT,
    )


@click.group(name="data")
def data_group() -> None:
    """The data folder: candle datasets and tables (CSV or Parquet). Generate samples, list them
    locally; upload a file to a backend and preview its columns."""


@data_group.command(name="sample")
@data_dir_option
@click.option("--symbol", "symbols", multiple=True, help="Symbol (repeatable) [default: EURUSD BTCUSD AAPL].")
@click.option("--timeframe", "timeframes", multiple=True, help="Timeframe (repeatable) [default: 1h 1d].")
@click.option("--rows", type=click.IntRange(100, 10_000_000), help="Candles per dataset.")
@click.option("--seed", type=click.IntRange(0), default=7, show_default=True, help="Random seed.")
def data_sample(
    data_dir: Path, symbols: tuple[str, ...], timeframes: tuple[str, ...], rows: int | None, seed: int
) -> None:
    """Write realistic seeded sample candles (trends, regimes, volatility clusters)
    as {SYMBOL}_{TIMEFRAME}.csv files; existing files of the same name are replaced.

    \b
    Examples:
      modelyard data sample
      modelyard data sample --data-dir /tmp/candles --symbol EURUSD --timeframe 1h --rows 2000
    """
    from shared.trainkit.errors import TrainkitError
    from shared.trainkit.workloads.strategy.sample_data import write_sample_data

    chosen: dict[str, Any] = {"seed": seed}
    if symbols:
        chosen["symbols"] = symbols
    if timeframes:
        chosen["timeframes"] = timeframes
    if rows:
        chosen["rows"] = rows
    try:
        written = write_sample_data(data_dir, **chosen)
    except TrainkitError as exc:
        raise CliFailure(exc.message) from exc
    except OSError as exc:
        raise CliFailure(f"cannot write sample data into {data_dir}: {exc}") from exc
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{len(written)} sample datasets in {data_dir}")


@data_group.command(name="list")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def data_list(data_dir: Path, as_json: bool) -> None:
    """List the data folder as the API does: candles (symbol, timeframe, rows, date range) and tables
    (CSV or Parquet: format, rows, columns).

    \b
    Example:
      modelyard data list
      modelyard data list --json
    """
    from backend.adapters.data_folder import DataFolder
    from shared.trainkit.errors import TrainkitError

    try:
        datasets = DataFolder(data_dir).list_datasets()
    except TrainkitError as exc:
        raise CliFailure(exc.message) from exc
    if as_json:
        click.echo(json.dumps(datasets, indent=2, default=str))
        return
    if not datasets:
        click.echo(f"no datasets in {data_dir}: run `modelyard data sample` to create some")
        return
    candles = [d for d in datasets if d.get("kind") == "candles"]
    tables = [d for d in datasets if d.get("kind") == "table"]
    out = Console()
    if candles:
        table = Table(title=f"Candles in {data_dir}", title_justify="left")
        for column in ("symbol", "timeframe", "rows", "start", "end"):
            table.add_column(column, justify="right" if column == "rows" else "left")
        for d in candles:
            start, end = (str(d.get(k, "-")).replace("T", " ")[:16] for k in ("start", "end"))
            table.add_row(str(d.get("symbol")), str(d.get("timeframe")), str(d.get("rows")), start, end)
        out.print(table)
    if tables:
        table = Table(title=f"Tables in {data_dir}", title_justify="left")
        for column in ("path", "format", "rows", "columns", "size"):
            table.add_column(column, justify="left" if column in ("path", "format") else "right")
        for d in tables:
            row = (d.get("path"), d.get("format"), d.get("rows"), d.get("columns"), d.get("size_bytes"))
            table.add_row(*(str(value) for value in row))
        out.print(table)


@data_group.command(name="upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_option
@click.option("--symbol", help="Candles: the symbol (with --timeframe). Without both, FILE is a table.")
@click.option("--timeframe", help="Candles: the timeframe, e.g. 1h.")
@click.option("--name", help="Table: the file name to store it as (.csv or .parquet); default FILE's name.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored file's entry as JSON.")
@click.pass_context
def data_upload(
    ctx: click.Context,
    file: Path,
    server: str,
    symbol: str | None,
    timeframe: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Upload a table (any CSV with a header line, or a Parquet file) or a candle CSV to the backend.

    The backend checks it first (a header naming each column once, no empty column, a real Parquet
    file) and answers what is wrong; then train on a table with `modelyard train --workload tabular`.

    \b
    Examples:
      modelyard data upload churn.parquet
      modelyard data upload raw.csv --name churn.csv
      modelyard data upload EURUSD_1h.csv --symbol EURUSD --timeframe 1h
    """
    form = {"kind": "candles" if symbol or timeframe else "table"}
    form |= {k: v for k, v in (("symbol", symbol), ("timeframe", timeframe), ("name", name)) if v}
    with cli_env(ctx).client(server) as client:
        stored = client.upload_data(file, form)
    if as_json:
        click.echo(stored.model_dump_json(indent=2))
    elif stored.kind == "candles":
        click.echo(f"uploaded candles {stored.symbol} {stored.timeframe}: {stored.rows} rows ({stored.path})")
    else:
        click.echo(
            f"uploaded table {stored.path}: {stored.rows} rows, {stored.columns} columns "
            f"({stored.format}, sha256 {stored.sha256})"
        )


@data_group.command(name="preview")
@click.argument("name")
@server_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def data_preview(ctx: click.Context, name: str, server: str, as_json: bool) -> None:
    """Columns of a data file on the backend: dtype and missing values, with its row count.

    \b
    Example:
      modelyard data preview churn.parquet
    """
    with cli_env(ctx).client(server) as client:
        preview = client.preview_data(name)
    if as_json:
        click.echo(preview.model_dump_json(indent=2))
        return
    table = Table(title=f"{preview.path}: {preview.rows} rows ({preview.format})", title_justify="left")
    for column in ("column", "dtype", "missing"):
        table.add_column(column, justify="right" if column == "missing" else "left")
    for column_view in preview.columns:
        table.add_row(column_view.name, column_view.dtype, str(column_view.missing))
    Console().print(table)


@click.group(name="strategies")
def strategies_group() -> None:
    """Strategy YAML files: list them, validate one."""


@strategies_group.command(name="list")
@strategies_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def strategies_list(strategies_dir: Path, as_json: bool) -> None:
    """List the strategies in the strategies folder, valid or not.

    \b
    Example:
      modelyard strategies list
    """
    from shared.trainkit.workloads.strategy.schema import list_strategies

    infos = list_strategies(strategies_dir)
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    if not infos:
        click.echo(f"no strategies in {strategies_dir}")
        return
    table = Table(title=f"Strategies in {strategies_dir}", title_justify="left")
    for column in ("name", "file", "valid", "description / error"):
        table.add_column(column)
    for info in infos:
        valid = "[green]yes[/]" if info.valid else "[red]no[/]"
        table.add_row(info.name, info.path, valid, info.description if info.valid else (info.error or ""))
    Console().print(table)


@strategies_group.command(name="validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def strategies_validate(file: Path) -> None:
    """Check a strategy file; a bad one prints the field and line at fault and exits with code 2.

    \b
    Example:
      modelyard strategies validate strategies/trend_momentum.yaml
    """
    from shared.trainkit.errors import TrainkitError
    from shared.trainkit.workloads.strategy.schema import load_strategy_file

    try:
        config = load_strategy_file(file)
    except TrainkitError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    outputs = len(config.input_ids)
    sets = sum(len(s) for s in config.fuzzy_sets.values())
    click.echo(
        f"{file}: valid strategy {config.name!r}: {len(config.indicators)} indicators "
        f"({outputs} outputs), {sets} fuzzy sets, labels {config.labels.method}"
    )
