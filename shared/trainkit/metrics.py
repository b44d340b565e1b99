"""Accumulating metrics (the :class:`~shared.trainkit.spi.Metric` SPI) for classifiers and regressors.

Sums stay tensors on the batch's device until :meth:`compute`, so ``update`` never forces a
host-device synchronisation.
"""

from __future__ import annotations

import torch

from shared.trainkit.errors import DataError
from shared.trainkit.spi import Metric


class _SumMetric(Metric):
    """Keeps a running ``total`` over ``count`` items; ``compute`` is their ratio."""

    name = "metric"

    def __init__(self) -> None:
        self._total: torch.Tensor | None = None
        self._count = 0

    def _add(self, total: torch.Tensor, count: int) -> None:
        total = total.detach().to(torch.float64)
        self._total = total if self._total is None else self._total + total
        self._count += count

    def compute(self) -> float:
        if self._total is None or self._count == 0:
            raise DataError(
                f"{self.name} has no data: call update() with at least one batch before compute()"
            )
        return float(self._total.item()) / self._count

    def reset(self) -> None:
        self._total = None
        self._count = 0


class Accuracy(_SumMetric):
    """Share of right predictions. ``preds`` are class indices (N) or scores/logits (N, C)."""

    name = "accuracy"

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        labels = preds.argmax(dim=-1) if preds.ndim == target.ndim + 1 else preds
        _check_same_shape(self.name, labels, target)
        self._add((labels == target).sum(), target.numel())


class MeanSquaredError(_SumMetric):
    name = "mse"

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        _check_same_shape(self.name, preds, target)
        self._add(((preds.float() - target.float()) ** 2).sum(), target.numel())


class MeanAbsoluteError(_SumMetric):
    name = "mae"

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        _check_same_shape(self.name, preds, target)
        self._add((preds.float() - target.float()).abs().sum(), target.numel())


def _check_same_shape(name: str, preds: torch.Tensor, target: torch.Tensor) -> None:
    if preds.shape != target.shape:
        raise DataError(
            f"{name}: predictions of shape {tuple(preds.shape)} do not match targets of shape "
            f"{tuple(target.shape)}",
            metric=name,
        )
