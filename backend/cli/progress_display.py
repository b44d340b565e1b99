"""The live training bar: percentage, phase, epoch and loss, fed by local updates or polled operations."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn


class ProgressLike(Protocol):
    """The fields shared by a trainkit ``ProgressUpdate`` and the wire ``ProgressView``."""

    @property
    def percentage(self) -> float: ...
    @property
    def phase(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def epoch(self) -> int | None: ...
    @property
    def total_epochs(self) -> int | None: ...
    @property
    def metrics(self) -> dict[str, float]: ...


def describe_progress(progress: ProgressLike) -> str:
    """``epoch 3/20 · loss 0.6931 · val_loss 0.7012`` (a command run: ``step 300/1000 · …``), whatever
    of it is known, else the message."""
    parts: list[str] = []
    if progress.epoch is not None:
        total = f"/{progress.total_epochs}" if progress.total_epochs else ""
        parts.append(f"epoch {progress.epoch}{total}")
    elif progress.message.startswith("step "):
        parts.append(progress.message)
    for key, label in (("train_loss", "loss"), ("loss", "loss"), ("val_loss", "val_loss")):
        value = progress.metrics.get(key)
        if value is not None and not any(p.startswith(f"{label} ") for p in parts):
            parts.append(f"{label} {value:.4f}")
    return " · ".join(parts) if parts else progress.message


class TrainingProgressDisplay:
    """A rich progress bar on ``console`` (stderr by default); ``enabled=False`` shows nothing."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<20}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._task: TaskID | None = None
        self.last_percentage = 0.0

    def __enter__(self) -> TrainingProgressDisplay:
        self._progress.start()
        self._task = self._progress.add_task("starting", total=100.0, detail="")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, progress: ProgressLike) -> None:
        """Show ``progress``; the bar never moves backwards even if an update arrives out of order."""
        if self._task is None:
            return
        self.last_percentage = max(self.last_percentage, float(progress.percentage))
        self._progress.update(
            self._task,
            completed=self.last_percentage,
            description=progress.phase,
            detail=describe_progress(progress),
        )
