"""Learning-rate schedules driven by :mod:`shared.trainkit.decisions` (the rules live there)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.trainkit.callbacks.early_stopping import check_monitor_options, monitored_value
from shared.trainkit.decisions import (
    Mode,
    cosine_learning_rate,
    epochs_without_improvement,
    next_learning_rate,
)
from shared.trainkit.errors import ConfigError
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_lr: float = 0.0,
        min_delta: float = 0.0,
        mode: Mode = "min",
    ) -> None:
        check_monitor_options("ReduceLROnPlateau", mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ConfigError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}", field="factor")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"ReduceLROnPlateau: patience must be >= 1, got {patience!r}", field="patience")
        if min_lr < 0:
            raise ConfigError(f"ReduceLROnPlateau: min_lr must be >= 0, got {min_lr}", field="min_lr")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_lr, self.min_delta, self.mode = min_lr, min_delta, mode
        self.values: list[float] = []

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        self.values.append(monitored_value(metrics, self.monitor, "ReduceLROnPlateau"))
        old = trainer.learning_rate
        new = next_learning_rate(
            self.values, old, self.patience, self.factor, self.min_lr, self.min_delta, self.mode
        )
        if new is None:
            return
        trainer.learning_rate = new
        stale = epochs_without_improvement(self.values, self.min_delta, self.mode)
        trainer.record_decision(
            "lr_lowered",
            f"{self.monitor} did not improve for {stale} epochs: learning rate {old:.3g} -> {new:.3g}",
            old_lr=old,
            new_lr=new,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values = [float(v) for v in state["values"]]


class CosineAnnealing(Callback):
    """Anneals the learning rate along a half cosine from its start value to ``eta_min`` over ``t_max``
    epochs (``None``: the fit's ``max_epochs``)."""

    def __init__(self, t_max: int | None = None, eta_min: float = 0.0) -> None:
        if t_max is not None and (isinstance(t_max, bool) or not isinstance(t_max, int) or t_max < 1):
            raise ConfigError(f"CosineAnnealing: t_max must be >= 1 or None, got {t_max!r}", field="t_max")
        if eta_min < 0:
            raise ConfigError(f"CosineAnnealing: eta_min must be >= 0, got {eta_min}", field="eta_min")
        self.t_max = t_max
        self.eta_min = eta_min
        self.base_lr: float | None = None

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        if self.base_lr is None:
            self.base_lr = trainer.learning_rate

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        base = self.base_lr if self.base_lr is not None else trainer.learning_rate
        t_max = self.t_max or trainer.config.max_epochs
        trainer.learning_rate = cosine_learning_rate(metrics.epoch, t_max, base, self.eta_min)

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = state.get("base_lr")
