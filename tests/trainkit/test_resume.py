"""Exact resume: a fit stopped after epoch 4 and resumed is the fit that never stopped; training
checkpoints are written on schedule, pruned, validated on load, and never stop a training."""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional

from shared.trainkit.callbacks import (
    CosineAnnealing,
    EarlyStopping,
    RunRecorder,
    TrainingCheckpoints,
)
from shared.trainkit.checkpoint import model_class_name, save_checkpoint
from shared.trainkit.config import TrainerConfig
from shared.trainkit.models import MLP, MLPSpec
from shared.trainkit.resume import checkpoint_name, training_checkpoints
from shared.trainkit.run_record import METRICS_FILE, RUN_FILE
from shared.trainkit.spi import Batch, Callback, EpochMetrics, TrainableModule, TrainStepOutput
from shared.trainkit.tensor_data import ArrayDataModule
from shared.trainkit.trainer import Trainer

CONFIG = TrainerConfig(
    max_epochs=10, batch_size=16, learning_rate=0.01, seed=7, deterministic=True, device="cpu"
)


class NoisyMLP(MLP):
    """The built-in MLP plus draws from every global RNG, so a resume that forgets one diverges."""

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        noise = torch.randn(x.shape) * 0.01 + float(np.random.random()) * 1e-3 + random.random() * 1e-3
        x = functional.dropout(x + noise, 0.1, training=True)  # the global torch RNG
        return super().training_step((x, y), batch_idx)


class CrashAfter(Callback):
    """Raises at the start of epoch ``epoch + 1``: a process killed once epoch ``epoch`` was saved."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: Trainer, module: TrainableModule, epoch: int) -> None:
        if epoch == self.epoch + 1:
            raise KeyboardInterrupt(f"killed before epoch {epoch}")


def _data() -> ArrayDataModule:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((160, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return ArrayDataModule((x[:128], y[:128]), (x[128:], y[128:]), None, seed=11)


def _module() -> NoisyMLP:
    spec = MLPSpec(input_dim=6, output_dim=2, hidden_layers=[16], dropout=0.2)
    return NoisyMLP(spec, generator=torch.Generator().manual_seed(5))


def _callbacks(folder: Path, *extra: Callback) -> list[Callback]:
    return [
        EarlyStopping(patience=50, restore_best_weights=True),
        CosineAnnealing(),
        RunRecorder(folder / "run"),
        TrainingCheckpoints(folder / "ckpt", min_interval_s=0),
        *extra,
    ]


def _without_durations(history: list[EpochMetrics]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.as_dict().items() if k != "duration_s"} for m in history]


def test_four_epochs_then_resume_ends_bitwise_equal_to_ten_straight(tmp_path: Path) -> None:
    straight_module = _module()
    straight = Trainer(CONFIG, _callbacks(tmp_path / "straight"))
    straight_result = straight.fit(straight_module, _data())

    crashed = Trainer(CONFIG, _callbacks(tmp_path / "resumed", CrashAfter(4)))
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(_module(), _data())
    resumed_module = _module()
    callbacks = _callbacks(tmp_path / "resumed")
    resumed = Trainer(CONFIG, callbacks)
    resumed_result = resumed.fit(resumed_module, _data(), resume_from=tmp_path / "resumed" / "ckpt")

    assert resumed.resumed_from_epoch == 4
    for name, tensor in straight_module.state_dict().items():
        assert torch.equal(tensor, resumed_module.state_dict()[name]), name
    assert _without_durations(resumed_result.history) == _without_durations(straight_result.history)
    assert resumed.global_step == straight.global_step == 10 * 8
    early = callbacks[0]
    assert isinstance(early, EarlyStopping)
    assert len(early.values) == 10
    rows = [
        json.loads(line) for line in (tmp_path / "resumed" / "run" / METRICS_FILE).read_text().splitlines()
    ]
    assert [row["epoch"] for row in rows] == list(range(1, 11))
    run = json.loads((tmp_path / "resumed" / "run" / RUN_FILE).read_text())
    assert [r["epoch"] for r in run["resumed"]] == [4]


def test_checkpoints_keep_the_last_two_and_respect_the_minimum_interval(tmp_path: Path) -> None:
    # The fit starts at 0; epochs 1..6 end at these moments. The interval counts from the start.
    ticks = iter([0.0, 1.0, 31.0, 32.0, 62.0, 63.0, 100.0])
    saver = TrainingCheckpoints(tmp_path, min_interval_s=30, clock=lambda: next(ticks))
    Trainer(TrainerConfig(max_epochs=6, batch_size=32, device="cpu"), [saver]).fit(_module(), _data())

    assert saver.saved == [2, 4, 6]
    assert [p.name for p in training_checkpoints(tmp_path)] == [checkpoint_name(6), checkpoint_name(4)]


def test_a_fit_shorter_than_the_minimum_interval_writes_no_checkpoint(tmp_path: Path) -> None:
    ticks = iter([0.0, 5.0, 10.0, 29.9])
    saver = TrainingCheckpoints(tmp_path, min_interval_s=30, clock=lambda: next(ticks))
    Trainer(TrainerConfig(max_epochs=3, batch_size=32, device="cpu"), [saver]).fit(_module(), _data())

    assert saver.saved == []
    assert training_checkpoints(tmp_path) == []


def test_checkpoints_every_n_epochs(tmp_path: Path) -> None:
    saver = TrainingCheckpoints(tmp_path, every_n_epochs=2, min_interval_s=0, keep_last=5)
    Trainer(TrainerConfig(max_epochs=5, batch_size=32, device="cpu"), [saver]).fit(_module(), _data())
    assert saver.saved == [2, 4]


def _two_checkpoints(folder: Path) -> None:
    trainer = Trainer(CONFIG, [TrainingCheckpoints(folder, min_interval_s=0), CrashAfter(3)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(_module(), _data())
    assert [p.name for p in training_checkpoints(folder)] == [checkpoint_name(3), checkpoint_name(2)]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:-40] + bytes(b ^ 0xFF for b in data[-40:]), "corrupted"),
        (lambda data: b"PK\x03\x04 a zip file, not a checkpoint" * 10, "not a modelyard checkpoint"),
    ],
    ids=["truncated", "corrupt", "foreign"],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    tmp_path: Path, damage: Any, reason: str
) -> None:
    _two_checkpoints(tmp_path)
    newest = tmp_path / checkpoint_name(3)
    newest.write_bytes(damage(newest.read_bytes()))

    trainer = Trainer(CONFIG)
    result = trainer.fit(_module(), _data(), resume_from=tmp_path)

    assert trainer.resumed_from_epoch == 2
    assert any(reason in warning for warning in trainer.warnings)
    resume = [d for d in trainer.decisions if d["kind"] == "resume"]
    assert "resumed from epoch 2" in resume[0]["message"]
    assert "skipped 1 invalid" in resume[0]["message"]
    assert [m.epoch for m in result.history] == list(range(1, 11))


def test_a_checkpoint_of_another_configuration_is_not_resumed_from(tmp_path: Path) -> None:
    _two_checkpoints(tmp_path)
    other = TrainerConfig(
        max_epochs=10, batch_size=16, learning_rate=0.02, seed=7, deterministic=True, device="cpu"
    )
    trainer = Trainer(other)
    result = trainer.fit(_module(), _data(), resume_from=tmp_path)

    assert trainer.resumed_from_epoch == 0
    assert sum("another configuration" in w for w in trainer.warnings) == 2
    assert "starting from scratch" in trainer.decisions[0]["message"]
    assert [m.epoch for m in result.history] == list(range(1, 11))


def test_a_model_checkpoint_without_training_state_is_refused_for_resume(tmp_path: Path) -> None:
    module = _module()
    save_checkpoint(
        tmp_path / checkpoint_name(5),
        module.state_dict(),
        model_class=model_class_name(module),
        config=CONFIG.as_dict(),
        extra={"epoch": 5},
    )
    trainer = Trainer(CONFIG)
    trainer.fit(module, _data(), resume_from=tmp_path / checkpoint_name(5))

    assert trainer.resumed_from_epoch == 0
    assert any("holds no training state" in w for w in trainer.warnings)


def test_resume_from_an_empty_folder_starts_from_scratch_and_says_so(tmp_path: Path) -> None:
    trainer = Trainer(TrainerConfig(max_epochs=2, batch_size=32, device="cpu"))
    trainer.fit(_module(), _data(), resume_from=tmp_path)
    assert trainer.decisions[0]["kind"] == "resume"
    assert f"no training checkpoint in {tmp_path}" in trainer.decisions[0]["message"]


def test_an_unexpected_error_of_the_background_checkpoint_write_fails_the_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise ValueError("not a disk problem")

    monkeypatch.setattr(os, "fsync", broken)
    saver = TrainingCheckpoints(tmp_path, min_interval_s=0)
    trainer = Trainer(TrainerConfig(max_epochs=3, batch_size=32, device="cpu"), [saver])
    with pytest.raises(ValueError, match="not a disk problem"):
        trainer.fit(_module(), _data())
    assert saver.saved == []


def test_disk_full_while_checkpointing_warns_and_training_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    saver = TrainingCheckpoints(tmp_path, min_interval_s=0)
    trainer = Trainer(TrainerConfig(max_epochs=3, batch_size=32, device="cpu"), [saver])
    result = trainer.fit(_module(), _data())

    assert result.epochs_trained == 3
    assert saver.saved == []
    assert training_checkpoints(tmp_path) == []
    assert list(tmp_path.iterdir()) == []  # no half-written temp file left behind
    assert len([w for w in trainer.warnings if "No space left on device" in w]) == 3


def test_bad_checkpoint_schedule_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    from shared.trainkit.errors import ConfigError

    with pytest.raises(ConfigError) as every:
        TrainingCheckpoints(tmp_path, every_n_epochs=0)
    assert every.value.details["field"] == "checkpoint_every_epochs"
    with pytest.raises(ConfigError) as interval:
        TrainingCheckpoints(tmp_path, min_interval_s=-1)
    assert interval.value.details["field"] == "checkpoint_min_interval_s"
