"""Stop training when a monitored metric stops improving (the rule is :func:`decisions.should_stop_early`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from shared.trainkit.config import FitResult, StopReason
from shared.trainkit.decisions import MODES, Mode, best_index, epochs_without_improvement, should_stop_early
from shared.trainkit.errors import ConfigError
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer


def monitored_value(metrics: EpochMetrics, monitor: str, owner: str) -> float:
    """The value of ``monitor`` in an epoch's record; a missing metric is a configuration error."""
    value = metrics.get(monitor)
    if value is None:
        available = sorted(k for k, v in metrics.as_dict().items() if v is not None and k != "epoch")
        raise ConfigError(
            f"{owner} monitors {monitor!r} but epoch {metrics.epoch} has no such metric (available: "
            f"{', '.join(available)}); pick one of those or give the data module a validation split",
            field="monitor",
            value=monitor,
        )
    return value


def check_monitor_options(owner: str, mode: str, min_delta: float) -> None:
    if mode not in MODES:
        raise ConfigError(f"{owner}: mode must be 'min' or 'max', got {mode!r}", field="mode", value=mode)
    if min_delta < 0:
        raise ConfigError(
            f"{owner}: min_delta must be >= 0, got {min_delta}", field="min_delta", value=min_delta
        )


class EarlyStopping(Callback):
    """Requests a stop after ``patience`` epochs without improvement of ``monitor``; 0 disables it.

    With ``restore_best_weights`` the module ends the fit with the weights of its best epoch (a copy is
    kept on each improvement), not those of the last, ``patience`` epochs past it."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: Mode = "min",
        *,
        restore_best_weights: bool = False,
    ):
        check_monitor_options("EarlyStopping", mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ConfigError(
                f"EarlyStopping: patience must be a whole number >= 0 (0 disables), got {patience!r}",
                field="patience",
                value=patience,
            )
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode: Mode = mode
        self.values: list[float] = []
        self.stopped_epoch: int | None = None
        self.restore_best_weights = restore_best_weights
        self._best_state: dict[str, torch.Tensor] | None = None

    @property
    def wait(self) -> int:
        """Epochs since the last improvement."""
        return epochs_without_improvement(self.values, self.min_delta, self.mode)

    @property
    def best(self) -> float | None:
        index = best_index(self.values, self.mode)
        return None if index is None else self.values[index]

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        self.values.append(monitored_value(metrics, self.monitor, "EarlyStopping"))
        if self.restore_best_weights and self.wait == 0:
            self._best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if should_stop_early(self.values, self.patience, self.min_delta, self.mode):
            self.stopped_epoch = metrics.epoch
            trainer.request_stop(
                StopReason.EARLY_STOPPING,
                f"early stop: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.6g})",
            )

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        if self.restore_best_weights and self._best_state is not None and self.wait > 0:
            module.load_state_dict(self._best_state)
            best_epoch = len(self.values) - self.wait
            trainer.record_decision(
                "restore_best_weights",
                f"weights restored from epoch {best_epoch}, the best by {self.monitor} ({self.best:.6g})",
                best_epoch=best_epoch,
            )
        self._best_state = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "monitor": self.monitor,
            "values": list(self.values),
            "stopped_epoch": self.stopped_epoch,
        }
        if self.restore_best_weights and self._best_state is not None:
            state["best_state"] = self._best_state  # a resumed fit can still restore the best epoch
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values = [float(v) for v in state["values"]]
        self.stopped_epoch = state.get("stopped_epoch")
        best_state = state.get("best_state")
        if isinstance(best_state, dict):
            self._best_state = dict(best_state)
