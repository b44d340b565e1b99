"""Write ``last.pt`` every epoch and ``best.pt`` whenever the monitored metric improves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.trainkit.callbacks.early_stopping import check_monitor_options, monitored_value
from shared.trainkit.checkpoint import model_class_name, save_checkpoint
from shared.trainkit.decisions import Mode, should_checkpoint
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer


class ModelCheckpoint(Callback):
    """Saves checkpoints in the trainkit format into ``dirpath``. Runs after the other callbacks, so the
    callback states it saves are those of the finished epoch. ``best_path`` names the best file."""

    runs_last = True

    def __init__(
        self,
        dirpath: Path | str,
        monitor: str = "val_loss",
        mode: Mode = "min",
        save_best: bool = True,
        save_last: bool = True,
        min_delta: float = 0.0,
    ) -> None:
        check_monitor_options("ModelCheckpoint", mode, min_delta)
        self.dirpath = Path(dirpath)
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.save_best, self.save_last = save_best, save_last
        self.values: list[float] = []
        self.best_path: Path | None = None
        self.best_epoch: int | None = None

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.pt"

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        value = monitored_value(metrics, self.monitor, "ModelCheckpoint")
        self.values.append(value)
        is_best = self.save_best and should_checkpoint(self.values, self.min_delta, self.mode)
        if not (is_best or self.save_last):
            return
        if is_best:
            self.best_path, self.best_epoch = self.dirpath / "best.pt", metrics.epoch
        extra = trainer.checkpoint_extra(module)
        if self.save_last:
            self._save(trainer, module, self.last_path, extra)
        if is_best and self.best_path is not None:
            self._save(trainer, module, self.best_path, extra)
            trainer.record_decision(
                "checkpoint",
                f"saved best checkpoint: {self.monitor} {value:.6g} at epoch {metrics.epoch}",
                path=str(self.best_path),
                monitor=self.monitor,
                value=value,
            )

    def _save(self, trainer: Trainer, module: TrainableModule, path: Path, extra: dict[str, Any]) -> None:
        save_checkpoint(
            path,
            module.state_dict(),
            model_class=model_class_name(module),
            config=trainer.config.as_dict(),
            extra=extra,
        )
        trainer.register_artifact(str(path), "checkpoint")

    def state_dict(self) -> dict[str, Any]:
        return {
            "values": list(self.values),
            "best_path": None if self.best_path is None else str(self.best_path),
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values = [float(v) for v in state["values"]]
        self.best_path = None if state.get("best_path") is None else Path(state["best_path"])
        self.best_epoch = state.get("best_epoch")
