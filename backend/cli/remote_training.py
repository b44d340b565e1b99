"""Following an operation on the backend with the live bar; Ctrl-C offers to cancel it on the server."""

from __future__ import annotations

import time
from collections.abc import Callable

import click
from rich.console import Console

from backend.cli.backend_client import BackendClient
from backend.cli.failures import EXIT_CANCELLED, EXIT_FAILED, CliFailure
from backend.cli.progress_display import TrainingProgressDisplay
from backend.cli.tables import model_location, result_table
from shared.contracts.operations import OperationStatusName, OperationView

TERMINAL_STATUSES = frozenset(
    {OperationStatusName.COMPLETED, OperationStatusName.FAILED, OperationStatusName.CANCELLED}
)


def poll_until_done(
    client: BackendClient,
    operation_id: str,
    display: TrainingProgressDisplay,
    *,
    interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> OperationView:
    """Poll ``GET /api/v1/operations/{id}`` into ``display`` until the operation is finished."""
    while True:
        op = client.get_operation(operation_id)
        display.update(op.progress)
        if op.status in TERMINAL_STATUSES:
            return op
        sleep(interval_s)


def follow_operation(
    client: BackendClient, operation_id: str, display: TrainingProgressDisplay, *, interval_s: float
) -> OperationView:
    """Follow with the live bar; on Ctrl-C ask whether to cancel on the server (exit code 130 either way)."""
    try:
        with display:
            return poll_until_done(client, operation_id, display, interval_s=interval_s)
    except KeyboardInterrupt:
        click.echo("", err=True)
        if click.confirm("Cancel the training on the server?", default=False, err=True):
            answer = client.cancel_operation(operation_id)
            status = answer.status.value if answer is not None else "cancel requested"
            click.echo(f"operation {operation_id}: {status}", err=True)
        else:
            click.echo(
                f"the training goes on; watch it again with `modelyard ops follow {operation_id}`",
                err=True,
            )
        raise CliFailure("cancelled", EXIT_CANCELLED) from None


def report_finished(op: OperationView, console: Console, *, as_json: bool) -> None:
    """Print a finished operation's outcome; a failed or cancelled one ends with a ``CliFailure``."""
    if as_json:
        click.echo(op.model_dump_json(indent=2))
    if op.status is OperationStatusName.FAILED:
        error = f"{op.error.code}: {op.error.message}" if op.error else "no error reported"
        raise CliFailure(f"training {op.operation_id} failed: {error}", EXIT_FAILED)
    if op.status is OperationStatusName.CANCELLED:
        raise CliFailure(f"training {op.operation_id} was cancelled", EXIT_CANCELLED)
    if as_json:
        return
    result = op.result or {}
    console.print(result_table(result))
    if isinstance(result.get("model"), dict):
        console.print(f"model stored at [bold]{model_location(result['model'])}[/] on the server")
