"""Following an operation on the backend with the live bar; Ctrl-C offers to cancel it on the server.

Progress comes from the operation's Server-Sent Events stream (live, one connection); if the server has
no stream or it keeps breaking, the follower falls back to polling ``GET /api/v1/operations/{id}``."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.console import Console

from backend.cli.backend_client import (
    BackendApiError,
    BackendClient,
    BackendUnreachableError,
    EventStreamError,
)
from backend.cli.failures import EXIT_CANCELLED, EXIT_FAILED, EXIT_LEFT_RUNNING, CliFailure
from backend.cli.options import CliEnv
from backend.cli.progress_display import TrainingProgressDisplay
from backend.cli.tables import model_location, result_table
from shared.contracts.operations import OperationStatusName, OperationView

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset(
    {OperationStatusName.COMPLETED, OperationStatusName.FAILED, OperationStatusName.CANCELLED}
)
#: Event-stream connections in a row that may break before anything arrives; then the follower polls.
MAX_STREAM_FAILURES = 3


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


def watch_events(
    client: BackendClient,
    operation_id: str,
    display: TrainingProgressDisplay,
    *,
    interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> OperationView | None:
    """Follow the operation's event stream into ``display`` until it ends; reconnect when the stream
    drops. ``None`` when the stream cannot be used (the caller then polls): the server answered an error
    or nothing, or :data:`MAX_STREAM_FAILURES` connections in a row broke before delivering an event."""
    failures = 0
    while failures < MAX_STREAM_FAILURES:
        try:
            with contextlib.closing(client.operation_events(operation_id)) as events:
                for op in events:
                    failures = 0  # it works: a stream that drops after events is simply reopened
                    display.update(op.progress)
                    if op.status in TERMINAL_STATUSES:
                        return op
            reason = "it ended before the operation did"  # a restart, or a proxy cutting it
        except EventStreamError as exc:
            reason = str(exc)
        except (BackendApiError, BackendUnreachableError) as exc:
            # An older server without the stream, or a real error that polling reports properly.
            logger.info("no event stream for %s (%s): polling", operation_id, exc)
            return None
        failures += 1
        logger.info("event stream of %s dropped (%s): reconnecting", operation_id, reason)
        sleep(interval_s * failures)
    logger.info("event stream of %s kept failing: polling", operation_id)
    return None


def follow_operation(
    client: BackendClient,
    operation_id: str,
    display: TrainingProgressDisplay,
    *,
    interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> OperationView:
    """Follow with the live bar (the event stream, else polling every ``interval_s``) until the operation
    ends. Ctrl-C asks whether to cancel it on the server: yes exits 130, no leaves it running (exit 0)."""
    try:
        with display:
            op = watch_events(client, operation_id, display, interval_s=interval_s, sleep=sleep)
            if op is None:
                op = poll_until_done(client, operation_id, display, interval_s=interval_s, sleep=sleep)
            return op
    except KeyboardInterrupt:
        click.echo("", err=True)
        _cancel_or_leave(client, operation_id)


def _cancel_or_leave(client: BackendClient, operation_id: str) -> NoReturn:
    try:
        cancel = click.confirm("Cancel the training on the server?", default=False, err=True)
    except click.Abort:  # a second Ctrl-C, or no terminal to answer on: the safe choice is to leave it
        cancel = False
    if cancel:
        answer = client.cancel_operation(operation_id)
        status = answer.status.value if answer is not None else "cancel requested"
        click.echo(f"operation {operation_id}: {status}", err=True)
        raise CliFailure("cancelled", EXIT_CANCELLED)
    click.echo(f"left running on the server: follow it with `modelyard ops follow {operation_id}`", err=True)
    raise click.exceptions.Exit(EXIT_LEFT_RUNNING)


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
    result = op.result.model_dump() if op.result else {}
    console.print(result_table(result))
    if isinstance(result.get("model"), dict):
        console.print(f"model stored at [bold]{model_location(result['model'])}[/] on the server")


def submit_and_follow(env: CliEnv, server: str, body: dict[str, Any], *, follow: bool, as_json: bool) -> None:
    """Start a training on ``server`` and, with ``follow``, show it live to its end (``report_finished``)."""
    with env.client(server) as client:
        accepted = client.start_training(body)
        if not follow:
            if as_json:
                click.echo(accepted.model_dump_json(indent=2))
            else:
                click.echo(
                    f"operation {accepted.operation_id} {accepted.status.value} ({accepted.execution_mode}); "
                    f"follow it with `modelyard ops follow {accepted.operation_id}`"
                )
            return
        click.echo(f"operation {accepted.operation_id} accepted ({accepted.execution_mode})", err=True)
        for warning in accepted.warnings:
            click.echo(f"warning: {warning}", err=True)
        display = TrainingProgressDisplay(Console(stderr=True), enabled=not as_json)
        op = follow_operation(client, accepted.operation_id, display, interval_s=env.poll_interval_s)
    report_finished(op, Console(), as_json=as_json)
