"""Shipped callbacks: checkpoints, state round trips, LR schedules, timer, option validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shared.trainkit.callbacks import (
    CosineAnnealing,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    Timer,
)
from shared.trainkit.checkpoint import config_hash, load_checkpoint, model_class_name
from shared.trainkit.config import StopReason, TrainerConfig
from shared.trainkit.errors import ConfigError
from shared.trainkit.spi import Batch, EpochMetrics, ValStepOutput
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import BlobData, RecordingCallback, TinyClassifier


class Scripted(TinyClassifier):
    """Validation loss follows a script, one value per epoch."""

    def __init__(self, script: list[float]) -> None:
        super().__init__()
        self.script, self.epoch = script, -1

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        self.epoch += batch_idx == 0
        return ValStepOutput(loss=torch.tensor(self.script[self.epoch]), size=len(batch[1]))


class FakeClock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_model_checkpoint_writes_last_and_best_and_records_the_decision(tmp_path: Path) -> None:
    module = Scripted([1.0, 0.5, 0.7])
    checkpoint = ModelCheckpoint(tmp_path)
    trainer = Trainer(TrainerConfig(max_epochs=3, batch_size=48), [checkpoint])
    trainer.fit(module, BlobData())
    best = load_checkpoint(tmp_path / "best.pt", expected_model_class=model_class_name(module))
    last = load_checkpoint(tmp_path / "last.pt", expected_config_hash=config_hash(trainer.config.as_dict()))
    assert (best.extra["epoch"], last.extra["epoch"]) == (2, 3)
    assert checkpoint.best_epoch == 2
    assert checkpoint.best_path == tmp_path / "best.pt"
    torch.testing.assert_close(last.state_dict["linear.weight"], module.linear.weight.detach())
    assert [(d["kind"], d["epoch"]) for d in trainer.decisions] == [("checkpoint", 1), ("checkpoint", 2)]
    assert "at epoch 2" in trainer.decisions[-1]["message"]
    assert set(trainer.artifacts) == {str(tmp_path / "best.pt"), str(tmp_path / "last.pt")}


def test_early_stopping_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    stopper = EarlyStopping(patience=5)
    recorder = RecordingCallback()
    trainer = Trainer(
        TrainerConfig(max_epochs=3, batch_size=48), [stopper, ModelCheckpoint(tmp_path), recorder]
    )
    module = Scripted([1.0, 0.5, 0.7])
    trainer.fit(module, BlobData())
    assert recorder.calls.count("on_save_checkpoint") == 3

    restored = EarlyStopping(patience=5)
    fresh = Trainer(
        TrainerConfig(max_epochs=3, batch_size=48), [restored, ModelCheckpoint(tmp_path / "2"), recorder]
    )
    fresh.restore_callback_states(module, load_checkpoint(tmp_path / "last.pt").extra)
    assert restored.state_dict() == stopper.state_dict()
    assert (restored.best, restored.wait) == (0.5, 1)
    assert recorder.calls[-1] == "on_load_checkpoint"


def test_timer_state_round_trips_and_keeps_counting_after_restore() -> None:
    timer = Timer(clock=FakeClock(1.0))
    Trainer(TrainerConfig(max_epochs=2, batch_size=48), [timer]).fit(TinyClassifier(), BlobData())
    state = timer.state_dict()
    restored = Timer()
    restored.load_state_dict(state)
    assert restored.epoch_durations_s == timer.epoch_durations_s
    assert restored.elapsed_s == pytest.approx(state["elapsed_s"])


def test_timer_records_epoch_and_fit_durations() -> None:
    timer = Timer(clock=FakeClock(1.0))
    Trainer(TrainerConfig(max_epochs=2, batch_size=48), [timer]).fit(TinyClassifier(), BlobData())
    assert len(timer.epoch_durations_s) == 2
    assert all(d > 0 for d in timer.epoch_durations_s)
    assert timer.fit_duration_s is not None
    assert timer.fit_duration_s >= sum(timer.epoch_durations_s)


def test_timer_stops_at_the_time_limit_mid_epoch_after_validating() -> None:
    timer = Timer(max_duration_s=5.0, clock=FakeClock(1.0))  # every clock read advances one "second"
    trainer = Trainer(TrainerConfig(max_epochs=10, batch_size=8), [timer])
    result = trainer.fit(TinyClassifier(), BlobData())
    assert result.stop_reason is StopReason.TIME_LIMIT
    assert result.epochs_trained == 1
    assert result.history[0].val_loss is not None
    assert trainer.decisions[-1]["kind"] == "time_limit"


def test_reduce_lr_on_plateau_lowers_the_rate_and_records_it() -> None:
    scheduler = ReduceLROnPlateau(factor=0.5, patience=2)
    trainer = Trainer(TrainerConfig(max_epochs=6, batch_size=48, learning_rate=0.1), [scheduler])
    result = trainer.fit(Scripted([1.0, 0.9, 0.95, 0.96, 0.97, 0.98]), BlobData())
    assert [m.learning_rate for m in result.history] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    assert trainer.learning_rate == pytest.approx(0.025)
    lowered = [d for d in trainer.decisions if d["kind"] == "lr_lowered"]
    assert [(d["epoch"], d["new_lr"]) for d in lowered] == [
        (4, pytest.approx(0.05)),
        (6, pytest.approx(0.025)),
    ]


def test_cosine_annealing_follows_the_half_cosine_over_max_epochs() -> None:
    trainer = Trainer(TrainerConfig(max_epochs=4, batch_size=48, learning_rate=1.0), [CosineAnnealing()])
    result = trainer.fit(TinyClassifier(), BlobData())
    assert [m.learning_rate for m in result.history] == pytest.approx(
        [1.0, 0.853553, 0.5, 0.146447], abs=1e-6
    )


def test_monitoring_a_missing_metric_names_it() -> None:
    with pytest.raises(ConfigError, match="'val_loss'") as caught:
        Trainer(TrainerConfig(max_epochs=2), [EarlyStopping()]).fit(
            TinyClassifier(), BlobData(with_val=False)
        )
    assert caught.value.details["field"] == "monitor"


def test_early_stopping_can_monitor_accuracy_in_max_mode() -> None:
    stopper = EarlyStopping(monitor="val_accuracy", mode="max", patience=1)
    result = Trainer(TrainerConfig(max_epochs=20, batch_size=48), [stopper]).fit(TinyClassifier(), BlobData())
    assert result.stop_reason is StopReason.EARLY_STOPPING
    assert stopper.values == [m.metrics["val_accuracy"] for m in result.history]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: EarlyStopping(patience=-1), "patience"),
        (lambda: EarlyStopping(mode="up"), "mode"),  # type: ignore[arg-type]
        (lambda: EarlyStopping(min_delta=-0.1), "min_delta"),
        (lambda: ReduceLROnPlateau(factor=2.0), "factor"),
        (lambda: ReduceLROnPlateau(patience=0), "patience"),
        (lambda: CosineAnnealing(t_max=0), "t_max"),
        (lambda: Timer(max_duration_s=0), "max_duration_s"),
    ],
)
def test_bad_callback_options_raise_config_error_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    assert caught.value.details["field"] == field


class _DecisionLog:
    def __init__(self) -> None:
        self.decisions: list[tuple[str, str]] = []

    def record_decision(self, kind: str, message: str, **details: object) -> None:
        self.decisions.append((kind, message))

    def request_stop(self, reason: object, message: str) -> None:
        self.decisions.append(("stop", message))


def test_early_stopping_can_end_the_fit_with_the_best_epochs_weights() -> None:
    module = torch.nn.Linear(1, 1)
    trainer = _DecisionLog()
    stopping = EarlyStopping(patience=2, restore_best_weights=True)
    for epoch, (val_loss, weight) in enumerate([(1.0, 1.0), (0.5, 2.0), (0.7, 3.0), (0.9, 4.0)], start=1):
        with torch.no_grad():
            module.weight.fill_(weight)
        metrics = EpochMetrics(
            epoch=epoch, train_loss=1.0, val_loss=val_loss, learning_rate=0.1, duration_s=0.0
        )
        stopping.on_train_epoch_end(trainer, module, metrics)  # type: ignore[arg-type]
    stopping.on_fit_end(trainer, module, None)  # type: ignore[arg-type]
    assert float(module.weight.detach()) == 2.0
    assert trainer.decisions[-1][0] == "restore_best_weights"
    assert "epoch 2" in trainer.decisions[-1][1]


def test_early_stopping_leaves_the_weights_alone_by_default() -> None:
    module = torch.nn.Linear(1, 1)
    stopping = EarlyStopping(patience=5)
    for epoch, weight in [(1, 1.0), (2, 5.0)]:
        with torch.no_grad():
            module.weight.fill_(weight)
        metrics = EpochMetrics(
            epoch=epoch, train_loss=1.0, val_loss=float(epoch), learning_rate=0.1, duration_s=0.0
        )
        stopping.on_train_epoch_end(_DecisionLog(), module, metrics)  # type: ignore[arg-type]
    stopping.on_fit_end(_DecisionLog(), module, None)  # type: ignore[arg-type]
    assert float(module.weight.detach()) == 5.0
