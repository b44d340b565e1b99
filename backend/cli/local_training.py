"""In-process training for ``modelyard train`` without a server: the executor runs on a worker thread
so the main thread stays free to turn Ctrl-C into a cooperative cancel."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backend.cli.failures import EXIT_BAD_INPUT, EXIT_CANCELLED, CliFailure
from backend.cli.options import Executor
from backend.cli.progress_display import TrainingProgressDisplay
from shared.contracts.training import ProgressUpdate, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import TrainingCancelledError, TrainkitError

if TYPE_CHECKING:
    from shared.trainkit.executor.types import TrainingResult

#: How often the main thread wakes up while waiting, so Ctrl-C is noticed promptly.
_WAIT_SLICE_S = 0.1
#: After Ctrl-C, how long to wait for the training to reach its next cancel check.
CANCEL_GRACE_S = 60.0


def create_executor(data_dir: Path, models_dir: Path, runs_dir: Path) -> Executor:
    """The real TrainingExecutor storing into a ModelStorage on ``models_dir`` (imports torch)."""
    from shared.trainkit.executor import TrainingExecutor
    from shared.trainkit.storage import ModelStorage

    return TrainingExecutor(data_dir, ModelStorage(models_dir), run_root=runs_dir)


def new_run_name(now: datetime | None = None, *, name: str | None = None) -> str:
    """``run-20250105-100000-3f2c9a`` (``{name}-…`` for a named experiment): sortable by start time,
    and unique even for two runs started in the same second (the random suffix), like the backend's
    operation ids name its run folders."""
    started = now or datetime.now(UTC)
    return f"{name or 'run'}-{started:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class _Outcome:
    result: TrainingResult | None = None
    error: BaseException | None = None


def run_local_training(
    executor: Executor, request: TrainingRequest, display: TrainingProgressDisplay, *, run_name: str
) -> TrainingResult:
    """Train ``request`` with a live bar, its run record in the folder ``run_name``. Ctrl-C cancels at
    the next batch and raises a ``CliFailure`` with exit code 130; a second Ctrl-C stops waiting.
    Trainkit errors become exit code 2."""
    token = CancelToken()
    outcome = _Outcome()
    # Waiting on an Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
    # wrongly marked as stopped (CPython gh-90882), and then we would report before it finished.
    done = threading.Event()

    def work() -> None:
        try:
            outcome.result = executor.execute(request, display.update, token, run_name=run_name)
        except BaseException as exc:  # handed to the main thread, which decides what it means
            outcome.error = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="modelyard-train", daemon=True)
    with display:
        try:
            worker.start()
            while not done.wait(_WAIT_SLICE_S):
                pass
        except KeyboardInterrupt:
            _cancel(token, done, display)
    return _result_of(outcome)


def _cancel(token: CancelToken, done: threading.Event, display: TrainingProgressDisplay) -> None:
    """Set the token and wait for the worker to stop at its next check (it may also just finish)."""
    token.cancel("cancelled by Ctrl-C")
    display.update(
        ProgressUpdate(percentage=display.last_percentage, phase="cancelling", message="cancelling")
    )
    # A second Ctrl-C stops waiting; the daemon worker then ends with the process.
    with contextlib.suppress(KeyboardInterrupt):
        done.wait(CANCEL_GRACE_S)
    if not done.is_set():
        raise CliFailure("cancelled (the training did not stop in time; exiting anyway)", EXIT_CANCELLED)


def _result_of(outcome: _Outcome) -> TrainingResult:
    error = outcome.error
    if isinstance(error, TrainingCancelledError):
        raise CliFailure("cancelled", EXIT_CANCELLED) from error
    if isinstance(error, TrainkitError):
        raise CliFailure(error.message, EXIT_BAD_INPUT) from error
    if error is not None:
        raise error
    if outcome.result is None:
        raise CliFailure("training ended without a result", 1)
    return outcome.result


def print_local_result(result: TrainingResult, *, as_json: bool, run_dir: Path) -> None:
    """How ``train`` and ``commands run`` report an in-process training: the result as JSON, or its
    table, where the model went (or why none was stored), the other warnings and the run record."""
    import click
    from rich.console import Console

    from backend.cli.tables import model_location, result_table

    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    out = Console()
    out.print(result_table(result.as_dict()))
    if result.model is not None:
        out.print(f"model saved to [bold]{model_location(result.model.as_dict())}[/]")
        for warning in result.warnings:
            out.print(f"[yellow]warning[/]: {warning}")
    else:
        out.print("[yellow]no model stored[/]: " + "; ".join(result.warnings))
    out.print(f"run record in {run_dir}")
