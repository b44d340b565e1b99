"""Tiny models, datasets and a recording callback shared by the trainkit engine tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import torch
from torch.nn import functional

from shared.trainkit.config import FitResult
from shared.trainkit.spi import (
    Batch,
    Callback,
    DataModule,
    EpochMetrics,
    Stage,
    TrainableModule,
    TrainStepOutput,
    ValStepOutput,
)
from shared.trainkit.trainer import Trainer


class TinyClassifier(TrainableModule):
    """A linear 3-class classifier over 4 features."""

    def __init__(self, features: int = 4, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        return TrainStepOutput(loss=functional.cross_entropy(self(x), y))

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        x, y = batch
        logits = self(x)
        correct = int((logits.argmax(dim=1) == y).sum())
        return ValStepOutput(loss=functional.cross_entropy(logits, y), size=len(y), correct=correct)


class Batches:
    """Sized, re-iterable list of ``(x, y)`` slices in a fixed order."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        for start in range(0, len(self.x), self.batch_size):
            yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


class BlobData(DataModule):
    """Three separable Gaussian blobs (fixed seed); ``val_noise`` makes the validation split unlearnable."""

    def __init__(self, n_train: int = 96, n_val: int = 48, *, with_val: bool = True, val_noise: bool = False):
        generator = torch.Generator().manual_seed(1)
        self.x, self.y = _blobs(n_train, generator)
        self.vx, self.vy = _blobs(n_val, generator)
        if val_noise:
            self.vy = torch.randint(0, 3, (n_val,), generator=generator)
        self.with_val = with_val
        self.stages: list[Stage] = []

    def setup(self, stage: Stage) -> None:
        self.stages.append(stage)

    def train_dataloader(self, batch_size: int) -> Iterable[Batch]:
        return Batches(self.x, self.y, batch_size)

    def val_dataloader(self, batch_size: int) -> Iterable[Batch] | None:
        return Batches(self.vx, self.vy, batch_size) if self.with_val else None


def _blobs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(n) % 3
    centers = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    x = centers[y] + 0.5 * torch.randn(n, 4, generator=generator)
    return x, y


class RecordingCallback(Callback):
    """Records every hook call as a string, e.g. ``"on_train_batch_end:1:2"`` (epoch from 1, batch index)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self.calls.append("on_fit_start")

    def on_train_epoch_start(self, trainer: Trainer, module: TrainableModule, epoch: int) -> None:
        self.calls.append(f"on_train_epoch_start:{epoch}")

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainableModule, output: TrainStepOutput, batch_idx: int
    ) -> None:
        self.calls.append(f"on_train_batch_end:{trainer.current_epoch}:{batch_idx}")

    def on_validation_end(self, trainer: Trainer, module: TrainableModule, val_loss: float) -> None:
        self.calls.append(f"on_validation_end:{trainer.current_epoch}")

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        self.calls.append(f"on_train_epoch_end:{metrics.epoch}")

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        self.calls.append("on_fit_end")

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        self.calls.append(f"on_exception:{type(error).__name__}")

    def on_save_checkpoint(
        self, trainer: Trainer, module: TrainableModule, checkpoint: dict[str, Any]
    ) -> None:
        self.calls.append("on_save_checkpoint")

    def on_load_checkpoint(
        self, trainer: Trainer, module: TrainableModule, checkpoint: dict[str, Any]
    ) -> None:
        self.calls.append("on_load_checkpoint")


@pytest.fixture
def module() -> TinyClassifier:
    return TinyClassifier()


@pytest.fixture
def data() -> BlobData:
    return BlobData()
