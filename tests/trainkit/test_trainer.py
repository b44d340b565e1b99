"""Trainer.fit behaviour on tiny CPU problems: results, divergence, cancellation, accumulation, precision."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator

import pytest
import torch
from torch.nn import functional

from shared.trainkit.callbacks import EarlyStopping
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import StopReason, TrainerConfig
from shared.trainkit.errors import DataError, TrainingCancelledError, TrainingDivergedError
from shared.trainkit.loss_tracking import LossTracker
from shared.trainkit.spi import (
    Batch,
    Callback,
    DataModule,
    Stage,
    TrainableModule,
    TrainStepOutput,
    ValStepOutput,
)
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import Batches, BlobData, RecordingCallback, TinyClassifier

DEADLINE_S = 10.0


class LinearRegression(TrainableModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 1)
        self.lr = lr

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        return TrainStepOutput(loss=functional.mse_loss(self.linear(x).squeeze(-1), y))

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        x, y = batch
        return ValStepOutput(loss=functional.mse_loss(self.linear(x).squeeze(-1), y), size=len(y))

    def configure_optimizers(self, learning_rate: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=learning_rate)


class RegressionData(DataModule):
    def __init__(self, n: int = 32, scale: float = 1.0) -> None:
        generator = torch.Generator().manual_seed(3)
        self.x = scale * torch.randn(n, 4, generator=generator)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1

    def train_dataloader(self, batch_size: int) -> Iterable[Batch]:
        return Batches(self.x, self.y, batch_size)


def test_fit_returns_history_and_best_epoch_from_val_loss(module: TinyClassifier, data: BlobData) -> None:
    result = Trainer(TrainerConfig(max_epochs=3, batch_size=16, learning_rate=0.05)).fit(module, data)
    val_losses = [m.val_loss for m in result.history]
    assert result.epochs_trained == 3
    assert result.stop_reason is StopReason.MAX_EPOCHS
    assert result.best_val_loss == min(v for v in val_losses if v is not None)
    assert result.best_epoch == val_losses.index(result.best_val_loss) + 1  # epochs count from 1
    assert [m.epoch for m in result.history] == [1, 2, 3]
    assert all(0.0 <= m.metrics["val_accuracy"] <= 1.0 for m in result.history)
    assert data.stages == [Stage.FIT]
    assert result.device == "cpu"


def test_without_validation_best_epoch_follows_train_loss_and_no_val_loss_is_reported(
    module: TinyClassifier,
) -> None:
    result = Trainer(TrainerConfig(max_epochs=3, batch_size=16)).fit(module, BlobData(with_val=False))
    train_losses = [m.train_loss for m in result.history]
    assert all(m.val_loss is None for m in result.history)
    assert result.best_val_loss is None
    assert result.best_train_loss == min(train_losses)
    assert result.best_epoch == train_losses.index(min(train_losses)) + 1
    assert result.as_dict()["best_train_loss"] == min(train_losses)


class _ScriptedValLoss(TinyClassifier):
    """Validation loss follows a script, one value per epoch, so early stopping is exactly predictable."""

    def __init__(self, script: list[float]) -> None:
        super().__init__()
        self.script, self.epoch = script, -1

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        if batch_idx == 0:
            self.epoch += 1
        return ValStepOutput(loss=torch.tensor(self.script[self.epoch]), size=len(batch[1]))


def test_early_stopping_stops_after_patience_epochs_without_improvement() -> None:
    module = _ScriptedValLoss([1.0, 0.8, 0.9, 0.85, 0.7, 0.6])
    stopper = EarlyStopping(patience=2)
    result = Trainer(TrainerConfig(max_epochs=6, batch_size=48), [stopper]).fit(module, BlobData())
    assert result.epochs_trained == 4  # best at epoch 2, no improvement in epochs 3 and 4
    assert result.stop_reason is StopReason.EARLY_STOPPING
    assert stopper.stopped_epoch == 4
    assert result.best_epoch == 2
    assert result.best_val_loss == pytest.approx(0.8)


def test_early_stopping_on_seeded_problem_stops_where_the_rule_says() -> None:
    config = TrainerConfig(max_epochs=12, batch_size=16, learning_rate=0.2, seed=7)
    full = Trainer(config).fit(TinyClassifier(), BlobData(val_noise=True))
    values = [m.val_loss for m in full.history if m.val_loss is not None]
    stopped = Trainer(config, [EarlyStopping(patience=3)]).fit(TinyClassifier(), BlobData(val_noise=True))
    expected_epochs = next(i + 1 for i in range(len(values)) if i - values.index(min(values[: i + 1])) >= 3)
    assert stopped.stop_reason is StopReason.EARLY_STOPPING
    assert stopped.epochs_trained == expected_epochs
    assert [m.val_loss for m in stopped.history] == values[:expected_epochs]


class _NanAt(TinyClassifier):
    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.bad, self.epoch = (epoch, batch), -1

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        self.epoch += batch_idx == 0
        output = super().training_step(batch, batch_idx)
        return (
            TrainStepOutput(loss=output.loss * torch.nan) if (self.epoch, batch_idx) == self.bad else output
        )


def test_nan_loss_raises_diverged_naming_epoch_from_one_and_batch_index() -> None:
    with pytest.raises(TrainingDivergedError) as caught:
        Trainer(TrainerConfig(max_epochs=3, batch_size=16)).fit(_NanAt(1, 2), BlobData())  # 2nd epoch
    assert (caught.value.details["epoch"], caught.value.details["batch"]) == (2, 2)
    assert "epoch 2, batch 2" in str(caught.value)


def test_huge_learning_rate_diverges_with_a_named_batch() -> None:
    config = TrainerConfig(max_epochs=50, batch_size=4, learning_rate=10.0)
    with pytest.raises(TrainingDivergedError) as caught:
        Trainer(config).fit(LinearRegression(), RegressionData(scale=10.0))
    assert isinstance(caught.value.details["epoch"], int)
    assert isinstance(caught.value.details["batch"], int)
    assert "learning_rate" in str(caught.value)


class _Handshake(TinyClassifier):
    """At batch ``pause_at`` it lets another thread cancel, and counts the batches that start afterwards."""

    def __init__(self, token: CancelToken, pause_at: int) -> None:
        super().__init__()
        self.token, self.pause_at = token, pause_at
        self.reached, self.cancel_sent = threading.Event(), threading.Event()
        self.steps_after_cancel = 0
        self.steps = 0

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        if self.token.cancelled:
            self.steps_after_cancel += 1
        self.steps += 1
        if self.steps == self.pause_at:
            self.reached.set()
            assert self.cancel_sent.wait(DEADLINE_S)
        return super().training_step(batch, batch_idx)


def test_cancel_from_another_thread_stops_before_the_next_batch() -> None:
    token = CancelToken()
    module = _Handshake(token, pause_at=9)  # second epoch (6 batches per epoch), mid-epoch
    recorder = RecordingCallback()

    def cancel_when_reached() -> None:
        assert module.reached.wait(DEADLINE_S)
        token.cancel("test cancel")
        module.cancel_sent.set()

    canceller = threading.Thread(target=cancel_when_reached)
    canceller.start()
    with pytest.raises(TrainingCancelledError) as caught:
        Trainer(TrainerConfig(max_epochs=5, batch_size=16), [recorder], cancel=token).fit(module, BlobData())
    canceller.join(DEADLINE_S)
    assert module.steps_after_cancel == 0
    assert module.steps == 9
    assert "epoch 2, before training batch 3" in str(caught.value)
    assert caught.value.details["where"] == "epoch 2, before training batch 3"
    assert recorder.calls[-1] == "on_exception:TrainingCancelledError"


def test_cancel_before_fit_raises_before_any_batch(module: TinyClassifier, data: BlobData) -> None:
    token = CancelToken()
    token.cancel()
    recorder = RecordingCallback()
    with pytest.raises(TrainingCancelledError):
        Trainer(TrainerConfig(max_epochs=2), [recorder], cancel=token).fit(module, data)
    assert not any(call.startswith("on_train_batch_end") for call in recorder.calls)


def test_gradient_accumulation_of_two_batches_of_8_matches_one_batch_of_16() -> None:
    data = RegressionData(n=32)
    accumulated, single = LinearRegression(), LinearRegression()
    Trainer(TrainerConfig(max_epochs=3, batch_size=8, accumulate_grad_batches=2, learning_rate=0.05)).fit(
        accumulated, data
    )
    Trainer(TrainerConfig(max_epochs=3, batch_size=16, learning_rate=0.05)).fit(single, data)
    for a, b in zip(accumulated.parameters(), single.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(accumulated.linear.weight, LinearRegression().linear.weight)


class _Unsized(RegressionData):
    def train_dataloader(self, batch_size: int) -> Iterable[Batch]:
        def generate() -> Iterator[Batch]:
            yield from Batches(self.x, self.y, batch_size)

        class _Again:
            def __iter__(self) -> Iterator[Batch]:
                return generate()

        return _Again()


def test_leftover_accumulated_gradients_are_applied_for_loaders_without_length() -> None:
    sized, unsized = LinearRegression(), LinearRegression()
    config = TrainerConfig(max_epochs=1, batch_size=8, accumulate_grad_batches=3, learning_rate=0.05)
    Trainer(config).fit(sized, RegressionData(n=32))
    Trainer(config).fit(unsized, _Unsized(n=32))
    for a, b in zip(sized.parameters(), unsized.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_gradient_clipping_bounds_the_update() -> None:
    clipped, free = LinearRegression(), LinearRegression()
    start = [p.detach().clone() for p in clipped.parameters()]
    data = RegressionData(n=8, scale=10.0)
    Trainer(TrainerConfig(max_epochs=1, batch_size=8, learning_rate=0.01, gradient_clip_val=0.5)).fit(
        clipped, data
    )
    Trainer(TrainerConfig(max_epochs=1, batch_size=8, learning_rate=0.01)).fit(free, data)
    step = torch.cat([(p.detach() - s).flatten() for p, s in zip(clipped.parameters(), start, strict=True)])
    free_step = torch.cat([(p.detach() - s).flatten() for p, s in zip(free.parameters(), start, strict=True)])
    assert float(step.norm()) == pytest.approx(0.01 * 0.5, rel=1e-4)
    assert float(free_step.norm()) > float(step.norm()) * 10


def test_empty_training_split_raises_data_error(module: TinyClassifier) -> None:
    data = BlobData()
    data.x, data.y = data.x[:0], data.y[:0]
    with pytest.raises(DataError, match="no batches"):
        Trainer(TrainerConfig(max_epochs=1)).fit(module, data)


def test_16_mixed_on_cpu_warns_and_trains_in_32(module: TinyClassifier, data: BlobData) -> None:
    trainer = Trainer(TrainerConfig(max_epochs=1, batch_size=16, precision="16-mixed"))
    trainer.fit(module, data)
    assert trainer.precision == "32"
    assert any("16-mixed" in warning for warning in trainer.warnings)


def test_bf16_mixed_runs_under_cpu_autocast(data: BlobData) -> None:
    seen: list[torch.dtype] = []

    class _Probe(TinyClassifier):
        def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
            seen.append(self.linear(batch[0]).dtype)
            return super().training_step(batch, batch_idx)

    result = Trainer(TrainerConfig(max_epochs=1, batch_size=16, precision="bf16-mixed")).fit(_Probe(), data)
    assert set(seen) == {torch.bfloat16}
    assert result.history[0].train_loss > 0


class _DeterminismProbe(Callback):
    enabled_during_fit: bool | None = None

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self.enabled_during_fit = torch.are_deterministic_algorithms_enabled()


def test_deterministic_mode_is_on_during_fit_and_restored_after(
    module: TinyClassifier, data: BlobData
) -> None:
    probe = _DeterminismProbe()
    Trainer(TrainerConfig(max_epochs=1, deterministic=True), [probe]).fit(module, data)
    assert probe.enabled_during_fit is True
    assert torch.are_deterministic_algorithms_enabled() is False


class _Dropout(TinyClassifier):
    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        return TrainStepOutput(loss=functional.cross_entropy(self(functional.dropout(x, 0.5)), y))


def test_same_seed_gives_identical_histories_and_another_seed_does_not(data: BlobData) -> None:
    def losses(seed: int) -> list[float]:
        result = Trainer(TrainerConfig(max_epochs=2, batch_size=16, seed=seed)).fit(_Dropout(), data)
        return [m.train_loss for m in result.history]

    assert losses(5) == losses(5)
    assert losses(5) != losses(6)


def test_learning_rate_property_sets_every_param_group(module: TinyClassifier, data: BlobData) -> None:
    class _Halve(Callback):
        def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: object) -> None:
            trainer.learning_rate = trainer.learning_rate / 2

    trainer = Trainer(TrainerConfig(max_epochs=3, learning_rate=0.08), [_Halve()])
    result = trainer.fit(module, data)
    assert [m.learning_rate for m in result.history] == pytest.approx([0.08, 0.04, 0.02])
    assert trainer.optimizer is not None
    assert all(group["lr"] == pytest.approx(0.01) for group in trainer.optimizer.param_groups)


def test_step_metrics_are_averaged_into_the_epoch_record(data: BlobData) -> None:
    class _WithMetric(TinyClassifier):
        def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
            return TrainStepOutput(
                loss=super().training_step(batch, batch_idx).loss, metrics={"n": 2.0 * batch_idx}
            )

    result = Trainer(TrainerConfig(max_epochs=1, batch_size=32)).fit(_WithMetric(), data)  # 3 batches
    assert result.history[0].metrics["train_n"] == pytest.approx(2.0)


def test_deferred_loss_check_names_the_first_non_finite_batch() -> None:
    tracker = LossTracker(epoch=4, sync_every=4)
    for batch_idx, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        tracker.add(TrainStepOutput(loss=torch.tensor(value)), batch_idx)
    assert tracker.result() == (3.0, {})
    late = LossTracker(epoch=4, sync_every=4)
    late.add(TrainStepOutput(loss=torch.tensor(1.0)), 0)
    late.add(TrainStepOutput(loss=torch.tensor(math.inf)), 1)
    late.add(TrainStepOutput(loss=torch.tensor(math.nan)), 2)
    with pytest.raises(TrainingDivergedError, match="epoch 4, batch 1"):
        late.add(TrainStepOutput(loss=torch.tensor(1.0)), 3)
