"""Time every training epoch into a run's :class:`~shared.trainkit.telemetry.Telemetry`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule
from shared.trainkit.telemetry import Telemetry

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer


class TelemetryCallback(Callback):
    """Records one ``epoch`` event (attrs: ``epoch``, counting from 1) per training epoch, its training
    and validation included. An epoch the fit raises in is recorded with ``ok=False`` and the error's
    type name, like a timer whose block raised."""

    def __init__(self, telemetry: Telemetry, *, name: str = "epoch") -> None:
        self.telemetry = telemetry
        self.name = name
        self._epoch: int | None = None
        self._began = 0.0

    def on_train_epoch_start(self, trainer: Trainer, module: TrainableModule, epoch: int) -> None:
        self._epoch = epoch
        self._began = self.telemetry.clock()

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        self._finish(ok=True, error=None)

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        self._finish(ok=False, error=type(error).__name__)

    def _finish(self, *, ok: bool, error: str | None) -> None:
        if self._epoch is None:
            return  # no epoch in flight (failed before the first one, or between two)
        duration_s = self.telemetry.clock() - self._began
        self.telemetry.record(self.name, duration_s, ok=ok, error=error, epoch=self._epoch)
        self._epoch = None
