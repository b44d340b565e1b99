"""Weighted pipeline progress: each step owns a share of 0–100 %, and the reported value never goes back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.contracts.training import ProgressUpdate
from shared.trainkit.executor.types import ProgressCallback

if TYPE_CHECKING:
    from shared.trainkit.telemetry import Telemetry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One pipeline step: ``phase`` is its wire name, ``weight`` its relative share of the whole run."""

    phase: str
    weight: float
    label: str


class PipelineProgress:
    """Turns "step k is x % done" into one monotonic percentage and forwards it to the listener.

    When a step ends early (training stopped early) the next step's start is reported at once, so the
    bar jumps forward to evaluation rather than crawling; it never moves backwards. With ``telemetry``,
    each step is timed from its start to the next one's (``step.<phase>``), a failed one included.
    """

    def __init__(
        self, steps: Sequence[Step], listener: ProgressCallback, *, telemetry: Telemetry | None = None
    ) -> None:
        total = sum(s.weight for s in steps)
        self._starts: dict[str, float] = {}
        self._spans: dict[str, float] = {}
        acc = 0.0
        for step in steps:
            self._starts[step.phase] = 100.0 * acc / total
            self._spans[step.phase] = 100.0 * step.weight / total
            acc += step.weight
        self._labels = {s.phase: s.label for s in steps}
        self._listener = listener
        self._last = 0.0
        # Reports come from the training thread and from the progress reporter's delivery thread.
        self._lock = threading.Lock()
        self.total_epochs: int | None = None
        self._telemetry = telemetry
        self._open: tuple[str, float] | None = None

    @property
    def phases(self) -> list[str]:
        return list(self._starts)

    def start(self, phase: str, message: str | None = None) -> None:
        if self._open is None or self._open[0] != phase:
            self._end_step()
            self._open = (phase, time.perf_counter())
        self.report(phase, 0.0, message or self._labels[phase])

    def _end_step(self, error: str | None = None) -> None:
        if self._open is not None and self._telemetry is not None:
            phase, started = self._open
            self._telemetry.record(
                f"step.{phase}", time.perf_counter() - started, ok=error is None, error=error
            )
        self._open = None

    def close(self, error: str | None = None) -> None:
        """End the open step's timer (the run failed with ``error``, or ended)."""
        self._end_step(error)

    def report(
        self,
        phase: str,
        fraction: float,
        message: str,
        *,
        epoch: int | None = None,
        metrics: dict[str, float] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        value = self._starts[phase] + self._spans[phase] * fraction
        with self._lock:
            self._last = max(self._last, min(value, 100.0))
            update = ProgressUpdate(
                percentage=round(self._last, 2),
                phase=phase,
                message=message,
                epoch=epoch,
                total_epochs=self.total_epochs,
                metrics=metrics or {},
                extra=extra or {},
            )
            try:
                self._listener(update)
            except Exception:  # a broken listener must never break training
                logger.exception("progress listener failed; training goes on")

    def finish(self, message: str = "done") -> None:
        last_phase = list(self._starts)[-1]
        self.report(last_phase, 1.0, message)
        self._end_step()
