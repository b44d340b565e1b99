"""A tiny plugin used by the tests: a linear classifier over separable synthetic points."""

from __future__ import annotations

import numpy as np
import torch

from shared.trainkit.spi import Batch, TrainableModule, TrainStepOutput, ValStepOutput
from shared.trainkit.tensor_data import ArrayDataModule


class LinearClassifier(TrainableModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        return TrainStepOutput(loss=torch.nn.functional.cross_entropy(self(x), y))

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        x, y = batch
        out = self(x)
        return ValStepOutput(
            loss=torch.nn.functional.cross_entropy(out, y),
            size=len(y),
            correct=int((out.argmax(1) == y).sum()),
        )


def make() -> tuple[LinearClassifier, ArrayDataModule]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return LinearClassifier(), ArrayDataModule(
        (x[:400], y[:400]), (x[400:500], y[400:500]), (x[500:], y[500:])
    )


def not_a_pair() -> str:
    return "nope"
