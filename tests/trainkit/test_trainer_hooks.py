"""The exact order in which the trainer calls callback hooks."""

from __future__ import annotations

import pytest
import torch

from shared.trainkit.config import TrainerConfig
from shared.trainkit.errors import TrainingDivergedError
from shared.trainkit.spi import Batch, Callback, TrainableModule, TrainStepOutput
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import BlobData, RecordingCallback, TinyClassifier


def test_two_epoch_fit_calls_hooks_in_documented_order() -> None:
    recorder = RecordingCallback()
    data = BlobData(n_train=24, n_val=12)
    Trainer(TrainerConfig(max_epochs=2, batch_size=8), [recorder]).fit(TinyClassifier(), data)

    expected = ["on_fit_start"]
    for epoch in (1, 2):
        expected.append(f"on_train_epoch_start:{epoch}")
        expected += [f"on_train_batch_end:{epoch}:{b}" for b in range(3)]
        expected += [f"on_validation_end:{epoch}", f"on_train_epoch_end:{epoch}"]
    expected.append("on_fit_end")
    assert recorder.calls == expected


def test_fit_without_validation_skips_on_validation_end() -> None:
    recorder = RecordingCallback()
    data = BlobData(n_train=16, with_val=False)
    Trainer(TrainerConfig(max_epochs=1, batch_size=8), [recorder]).fit(TinyClassifier(), data)
    assert recorder.calls == [
        "on_fit_start",
        "on_train_epoch_start:1",
        "on_train_batch_end:1:0",
        "on_train_batch_end:1:1",
        "on_train_epoch_end:1",
        "on_fit_end",
    ]


class _NanAtSecondBatch(TinyClassifier):
    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        output = super().training_step(batch, batch_idx)
        return TrainStepOutput(loss=output.loss * torch.nan) if batch_idx == 1 else output


def test_failed_fit_ends_with_on_exception_instead_of_on_fit_end() -> None:
    recorder = RecordingCallback()
    with pytest.raises(TrainingDivergedError):
        Trainer(TrainerConfig(max_epochs=2, batch_size=8), [recorder]).fit(_NanAtSecondBatch(), BlobData())
    assert recorder.calls == [
        "on_fit_start",
        "on_train_epoch_start:1",
        "on_train_batch_end:1:0",
        "on_exception:TrainingDivergedError",
    ]


class _Ordered(Callback):
    def __init__(self, log: list[str], name: str, *, last: bool = False) -> None:
        self.log, self.name, self.runs_last = log, name, last

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self.log.append(self.name)


def test_callbacks_run_in_given_order_with_runs_last_ones_at_the_end() -> None:
    log: list[str] = []
    callbacks = [_Ordered(log, "a"), _Ordered(log, "ckpt", last=True), _Ordered(log, "b")]
    Trainer(TrainerConfig(max_epochs=1, batch_size=48), callbacks).fit(TinyClassifier(), BlobData())
    assert log == ["a", "b", "ckpt"]
