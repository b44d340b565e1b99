"""Service provider interface: what a model, a dataset, a callback or a metric implements.

Providers implement these; the :class:`~shared.trainkit.trainer.Trainer` calls into them (inversion
of control). Hooks are typed no-ops so a provider overrides only what it needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from shared.trainkit.config import FitResult
    from shared.trainkit.trainer import Trainer

#: One batch as a data loader yields it: usually ``(features, targets)``.
Batch = Any


class Stage(StrEnum):
    FIT = "fit"
    VALIDATE = "validate"
    TEST = "test"


@dataclass
class TrainStepOutput:
    """What ``training_step`` returns: the loss to backpropagate and optional scalar metrics."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class ValStepOutput:
    """What ``validation_step`` returns. ``size`` weights the batch when averaging over an epoch;
    ``correct`` (number of right predictions) lets the trainer report accuracy for classifiers."""

    loss: torch.Tensor
    size: int
    correct: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EpochMetrics:
    """The record of one finished epoch (``epoch`` counts from 1). ``metrics`` holds any extra scalars
    (val_accuracy …)."""

    epoch: int
    train_loss: float
    val_loss: float | None
    learning_rate: float
    duration_s: float
    metrics: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> float | None:
        """Look a metric up by its monitor name: ``train_loss``, ``val_loss`` or a key of ``metrics``."""
        if name == "train_loss":
            return self.train_loss
        if name == "val_loss":
            return self.val_loss
        if name in ("lr", "learning_rate"):
            return self.learning_rate
        return self.metrics.get(name)

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "lr": self.learning_rate,
            "duration_s": self.duration_s,
        }
        out.update(self.metrics)
        return out

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> EpochMetrics:
        """The inverse of :meth:`as_dict` (a checkpoint's history comes back through it)."""
        known = ("epoch", "train_loss", "val_loss", "lr", "duration_s")
        val_loss = row.get("val_loss")
        return cls(
            epoch=int(row["epoch"]),
            train_loss=float(row["train_loss"]),
            val_loss=None if val_loss is None else float(val_loss),
            learning_rate=float(row["lr"]),
            duration_s=float(row["duration_s"]),
            metrics={k: float(v) for k, v in row.items() if k not in known and v is not None},
        )


class TrainableModule(torch.nn.Module, ABC):
    """A model that knows how to compute its own loss. Subclass and implement the two steps."""

    @abstractmethod
    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        """Compute the loss of one training batch (the trainer does backward and the optimizer step)."""

    @abstractmethod
    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        """Compute the loss (and optionally correct predictions) of one validation batch."""

    def configure_optimizers(self, learning_rate: float) -> torch.optim.Optimizer:
        """Build the optimizer. Default: AdamW over all parameters at ``learning_rate``."""
        return torch.optim.AdamW(self.parameters(), lr=learning_rate)


class DataModule(ABC):
    """Owns a dataset's loading and splitting; hands the trainer iterables of batches."""

    def setup(self, stage: Stage) -> None:  # noqa: B027 - optional hook
        """Called once per stage before its dataloaders are requested."""

    @abstractmethod
    def train_dataloader(self, batch_size: int) -> Iterable[Batch]: ...

    def val_dataloader(self, batch_size: int) -> Iterable[Batch] | None:
        """Validation batches, or None to train without validation."""
        return None

    def test_dataloader(self, batch_size: int) -> Iterable[Batch] | None:
        return None


class Callback:
    """Typed no-op hooks, called by the trainer in a fixed order (see ``tests/trainkit`` for it).

    A callback with state returns it from ``state_dict`` and gets it back in ``load_state_dict``
    when a checkpoint is restored.
    """

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        """Once, before the first epoch."""

    def on_train_epoch_start(self, trainer: Trainer, module: TrainableModule, epoch: int) -> None:
        """At the start of every training epoch; ``epoch`` counts from 1."""

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainableModule, output: TrainStepOutput, batch_idx: int
    ) -> None:
        """After every training batch (after the optimizer step, if one was due)."""

    def on_validation_end(self, trainer: Trainer, module: TrainableModule, val_loss: float) -> None:
        """After the validation pass of an epoch."""

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        """After an epoch's training and validation; ``metrics`` is its record."""

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        """Once, after the last epoch, when fit completed without raising."""

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        """When fit is about to raise ``error`` (divergence, cancellation, a provider bug)."""

    def on_save_checkpoint(
        self, trainer: Trainer, module: TrainableModule, checkpoint: dict[str, Any]
    ) -> None:
        """When a checkpoint is written; may add entries to ``checkpoint``."""

    def on_load_checkpoint(
        self, trainer: Trainer, module: TrainableModule, checkpoint: dict[str, Any]
    ) -> None:
        """When a checkpoint is restored."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    @property
    def state_key(self) -> str:
        """Key of this callback's state inside a checkpoint."""
        return type(self).__qualname__


class Metric(ABC):
    """An accumulating metric: ``update`` per batch, ``compute`` at the end, ``reset`` between epochs."""

    @abstractmethod
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None: ...

    @abstractmethod
    def compute(self) -> float: ...

    @abstractmethod
    def reset(self) -> None: ...
