"""``modelyard ops …``: operations on the backend (list, show, cancel, retry, follow, logs)."""

from __future__ import annotations

import click
from rich.console import Console

from backend.cli.backend_client import OperationQuery
from backend.cli.log_reader import LogReader
from backend.cli.options import check_slug, cli_env, server_option
from backend.cli.progress_display import TrainingProgressDisplay
from backend.cli.remote_training import follow_operation, report_finished
from backend.cli.tables import operation_table, operations_table
from shared.contracts.operations import LogLine, OperationStatusName
from shared.contracts.training import Workload

_STATUSES = [s.value for s in OperationStatusName]
_WORKLOADS = [w.value for w in Workload]
#: The server's own bound on ``GET /api/v1/operations?limit=`` (``le=500``): click rejects more up front.
MAX_LIST_LIMIT = 500


@click.group(name="ops")
def ops_group() -> None:
    """Operations (trainings) on the backend. Needs a running server (`modelyard serve`)."""


@ops_group.command(name="list")
@click.option("--status", type=click.Choice(_STATUSES), help="Only operations in this status.")
@click.option(
    "--active", is_flag=True, help="Only operations not finished yet: pending, running or cancelling."
)
@click.option("--project", callback=check_slug, help="Only operations of this project.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    callback=check_slug,
    metavar="TAG",
    help="Only operations carrying this tag (repeatable: all of them).",
)
@click.option("--workload", type=click.Choice(_WORKLOADS), help="Only operations of this workload.")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIST_LIMIT),
    default=20,
    show_default=True,
    help=f"How many, newest first (at most {MAX_LIST_LIMIT}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@server_option
@click.pass_context
def ops_list(
    ctx: click.Context,
    status: str | None,
    active: bool,
    project: str | None,
    tags: tuple[str, ...],
    workload: str | None,
    limit: int,
    as_json: bool,
    server: str,
) -> None:
    """List operations, newest first, with their project, name and tags. Filters combine.

    \b
    Examples:
      modelyard ops list
      modelyard ops list --status running --limit 5
      modelyard ops list --project fx --tag baseline --tag gpu
      modelyard ops list --active --workload tabular
    """
    where = OperationQuery(project=project, tags=tags, workload=workload, active_only=active)
    with cli_env(ctx).client(server) as client:
        page = client.list_operations(status=status, limit=limit, where=where)
    if as_json:
        click.echo(page.model_dump_json(indent=2))
    elif not page.items:
        click.echo("no operations" + _matching(status, where))
    else:
        Console().print(operations_table(page.items))
        if page.total > len(page.items):
            click.echo(f"{len(page.items)} of {page.total} shown (--limit)")


@ops_group.command(name="show")
@click.argument("operation_id")
@click.option("--json", "as_json", is_flag=True, help="Print the operation as JSON.")
@server_option
@click.pass_context
def ops_show(ctx: click.Context, operation_id: str, as_json: bool, server: str) -> None:
    """Show one operation: status, progress, timings, error or result.

    \b
    Example:
      modelyard ops show 3f2c9a7e
    """
    with cli_env(ctx).client(server) as client:
        op = client.get_operation(operation_id)
    if as_json:
        click.echo(op.model_dump_json(indent=2))
    else:
        Console().print(operation_table(op))


@ops_group.command(name="cancel")
@click.argument("operation_id")
@server_option
@click.pass_context
def ops_cancel(ctx: click.Context, operation_id: str, server: str) -> None:
    """Cancel an operation; a running training stops within one batch.

    \b
    Example:
      modelyard ops cancel 3f2c9a7e
    """
    with cli_env(ctx).client(server) as client:
        answer = client.cancel_operation(operation_id)
    status = answer.status.value if answer is not None else "cancel requested"
    click.echo(f"operation {operation_id}: {status}")


@ops_group.command(name="retry")
@click.argument("operation_id")
@click.option(
    "--from-scratch", is_flag=True, help="Train from the first epoch instead of the last checkpoint."
)
@server_option
@click.pass_context
def ops_retry(ctx: click.Context, operation_id: str, from_scratch: bool, server: str) -> None:
    """Run a failed, cancelled or interrupted training again as a new attempt, resuming from its last
    checkpoint (its metrics history continues); a running or completed one is refused (exit 2).

    \b
    Examples:
      modelyard ops retry 3f2c9a7e
      modelyard ops retry 3f2c9a7e --from-scratch
    """
    with cli_env(ctx).client(server) as client:
        op = client.retry_operation(operation_id, from_checkpoint=not from_scratch)
    start = "from scratch" if from_scratch else "from its last checkpoint"
    click.echo(f"operation {op.operation_id}: {op.status.value}, attempt {len(op.attempt_history)} {start}")


@ops_group.command(name="follow")
@click.argument("operation_id")
@click.option("--json", "as_json", is_flag=True, help="No bar; print the finished operation as JSON.")
@server_option
@click.pass_context
def ops_follow(ctx: click.Context, operation_id: str, as_json: bool, server: str) -> None:
    """Follow an operation with a live progress bar until it ends, then print its result.

    Ctrl-C asks whether to cancel the training on the server: yes exits 130, no leaves it running
    (exit 0).

    \b
    Example:
      modelyard ops follow 3f2c9a7e
    """
    env = cli_env(ctx)
    display = TrainingProgressDisplay(Console(stderr=True), enabled=not as_json)
    with env.client(server) as client:
        op = follow_operation(client, operation_id, display, interval_s=env.poll_interval_s)
    report_finished(op, Console(), as_json=as_json)


@ops_group.command(name="logs")
@click.argument("operation_id")
@click.option(
    "--offset", type=click.IntRange(0), default=0, show_default=True, help="First log line to show."
)
@click.option("--tail", type=click.IntRange(1), metavar="N", help="Only the last N lines.")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing new lines until the operation ends (Ctrl-C stops)."
)
@server_option
@click.pass_context
def ops_logs(
    ctx: click.Context, operation_id: str, offset: int, tail: int | None, follow: bool, server: str
) -> None:
    """Print what the training logged: every line (page after page), the last N, or live.

    \b
    Examples:
      modelyard ops logs 3f2c9a7e
      modelyard ops logs 3f2c9a7e --tail 50
      modelyard ops logs 3f2c9a7e --follow
    """
    env = cli_env(ctx)
    with env.client(server) as client:
        reader = LogReader(client, operation_id, offset=offset)
        lines = reader.last(tail) if tail is not None else reader.read_available()
        for line in lines:
            _show_log_line(line)
        if follow:
            _follow_log(reader, env.poll_interval_s)
    if reader.truncated:
        click.echo("note: the server dropped later lines of this log (its log store is bounded)", err=True)


def _matching(status: str | None, where: OperationQuery) -> str:
    """`` with status running, active, in project fx, tagged gpu``: what the empty list was filtered on."""
    said = [f"with status {status}"] if status else []
    said += ["active"] if where.active_only else []
    said += [f"in project {where.project}"] if where.project else []
    said += [f"tagged {' and '.join(where.tags)}"] if where.tags else []
    said += [f"of workload {where.workload}"] if where.workload else []
    return "".join(f" {part}" for part in said)


def _show_log_line(line: LogLine) -> None:
    click.echo(f"{line.at:%Y-%m-%d %H:%M:%S} {line.level:<7} {line.logger}: {line.message}")


def _follow_log(reader: LogReader, interval_s: float) -> None:
    try:
        op = reader.follow(_show_log_line, interval_s=interval_s)
    except KeyboardInterrupt:
        click.echo(f"stopped following; operation {reader.operation_id} goes on", err=True)
        return
    click.echo(f"operation {op.operation_id} {op.status.value}", err=True)
