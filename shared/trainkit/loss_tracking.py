"""The mean training loss of an epoch and the NaN/inf check that names the batch where it broke.

On CPU the loss is read once per batch (reading is free there and lets the divergence check name the
batch before its NaN reaches the weights); on accelerators the losses stay on the device and are
checked for NaN/inf every ``DIVERGENCE_CHECK_EVERY`` batches in one sync, still naming the first bad
batch.
"""

from __future__ import annotations

import math

import torch

from shared.trainkit.errors import TrainingDivergedError
from shared.trainkit.spi import TrainStepOutput

DIVERGENCE_CHECK_EVERY = 32


class LossTracker:
    """Mean training loss and step metrics of epoch ``epoch`` (numbered from 1).

    ``sync_every=1`` reads every loss at once (CPU); otherwise losses stay on the device and are
    checked and summed in one sync every ``sync_every`` batches (default ``DIVERGENCE_CHECK_EVERY``)."""

    def __init__(self, epoch: int, sync_every: int | None) -> None:
        self.epoch = epoch
        self.sync_every = sync_every or DIVERGENCE_CHECK_EVERY
        self.total = 0.0
        self.count = 0
        self.pending: list[torch.Tensor] = []
        self.first_pending = 0
        self.metrics: dict[str, float] = {}

    def add(self, output: TrainStepOutput, batch_idx: int) -> None:
        if self.sync_every == 1:
            value = output.loss.item()
            if not math.isfinite(value):
                raise diverged(self.epoch, batch_idx, value, "training")
            self.total += value
            self.count += 1
        else:
            if not self.pending:
                self.first_pending = batch_idx
            self.pending.append(output.loss.detach())
            if len(self.pending) >= self.sync_every:
                self._sync()
        if output.metrics:
            for key, value in output.metrics.items():
                self.metrics[key] = self.metrics.get(key, 0.0) + float(value)

    def result(self) -> tuple[float, dict[str, float]]:
        self._sync()
        mean = {prefixed("train_", key): total / self.count for key, total in self.metrics.items()}
        return self.total / self.count, mean

    def _sync(self) -> None:
        if not self.pending:
            return
        losses = torch.stack(self.pending).float()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0].item())
            raise diverged(self.epoch, self.first_pending + bad, float(losses[bad].item()), "training")
        self.total += float(losses.sum().item())
        self.count += len(self.pending)
        self.pending = []


def diverged(epoch: int, batch: int | None, value: float, phase: str) -> TrainingDivergedError:
    """The error for a non-finite loss in ``epoch`` (from 1) at batch index ``batch`` (from 0)."""
    where = f"epoch {epoch}, batch {batch}" if batch is not None else f"epoch {epoch} ({phase})"
    return TrainingDivergedError(
        f"{phase} loss became {value} at {where}; lower learning_rate, set gradient_clip_val, "
        "or check the data for NaN/inf values",
        epoch=epoch,
        batch=batch,
        phase=phase,
    )


def prefixed(prefix: str, key: str) -> str:
    """``key`` as an epoch metric name: ``train_``/``val_`` prefixed unless it already is."""
    return key if key.startswith(("train_", "val_")) else prefix + key
