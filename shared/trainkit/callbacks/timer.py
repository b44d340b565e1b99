"""Measure the fit and its epochs; optionally stop at a time limit (checked after every batch)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.trainkit.config import FitResult, StopReason
from shared.trainkit.errors import ConfigError
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule, TrainStepOutput

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer


class Timer(Callback):
    """Records ``fit_duration_s`` and ``epoch_durations_s``; with ``max_duration_s`` requests
    :attr:`StopReason.TIME_LIMIT` once that much time went by (the current epoch still validates)."""

    def __init__(self, max_duration_s: float | None = None, *, clock: Callable[[], float] = time.monotonic):
        if max_duration_s is not None and not max_duration_s > 0:
            raise ConfigError(
                f"Timer: max_duration_s must be > 0 or None, got {max_duration_s}", field="max_duration_s"
            )
        self.max_duration_s = max_duration_s
        self.clock = clock
        self.epoch_durations_s: list[float] = []
        self.fit_duration_s: float | None = None
        self._elapsed_before = 0.0
        self._fit_start: float | None = None
        self._epoch_start = 0.0

    @property
    def elapsed_s(self) -> float:
        """Time spent in fit so far, including what a restored checkpoint had already spent."""
        if self._fit_start is None:
            return self._elapsed_before
        return self._elapsed_before + self.clock() - self._fit_start

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self._fit_start = self.clock()

    def on_train_epoch_start(self, trainer: Trainer, module: TrainableModule, epoch: int) -> None:
        self._epoch_start = self.clock()

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainableModule, output: TrainStepOutput, batch_idx: int
    ) -> None:
        self._check_limit(trainer, batch_idx)

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        self.epoch_durations_s.append(self.clock() - self._epoch_start)
        self._check_limit(trainer, None)

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        self.fit_duration_s = self.elapsed_s

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        self.fit_duration_s = self.elapsed_s

    def _check_limit(self, trainer: Trainer, batch_idx: int | None) -> None:
        if self.max_duration_s is None or trainer.stop_reason is not None:
            return
        elapsed = self.elapsed_s
        if elapsed >= self.max_duration_s:
            where = f"epoch {trainer.current_epoch}" + (
                f", batch {batch_idx}" if batch_idx is not None else ""
            )
            trainer.request_stop(
                StopReason.TIME_LIMIT,
                f"time limit of {self.max_duration_s:g}s reached after {elapsed:.1f}s ({where})",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_s": self.elapsed_s, "epoch_durations_s": list(self.epoch_durations_s)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._elapsed_before = float(state["elapsed_s"])
        self.epoch_durations_s = [float(v) for v in state["epoch_durations_s"]]
