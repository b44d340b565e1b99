"""Accumulating metrics."""

from __future__ import annotations

import pytest
import torch

from shared.trainkit.errors import DataError
from shared.trainkit.metrics import Accuracy, MeanAbsoluteError, MeanSquaredError


def test_accuracy_accumulates_over_batches_from_logits_or_labels() -> None:
    metric = Accuracy()
    metric.update(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 0]))  # 1 of 2
    metric.update(torch.tensor([1, 1]), torch.tensor([1, 1]))  # 2 of 2
    assert metric.compute() == pytest.approx(0.75)
    metric.reset()
    with pytest.raises(DataError, match="no data"):
        metric.compute()


def test_mse_and_mae() -> None:
    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    for metric in (mse, mae):
        metric.update(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]))
    assert mse.compute() == pytest.approx(2.5)
    assert mae.compute() == pytest.approx(1.5)


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(DataError, match=r"\(3,\).*\(2,\)"):
        MeanSquaredError().update(torch.zeros(3), torch.zeros(2))
