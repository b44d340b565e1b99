"""ProgressReporter: fractions, coalescing, and listeners that fail or block never hurt training."""

from __future__ import annotations

import logging
import threading

import pytest

from shared.trainkit.callbacks import ProgressReporter, TrainingProgress
from shared.trainkit.callbacks.progress import ProgressDelivery
from shared.trainkit.config import TrainerConfig
from shared.trainkit.errors import ConfigError
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import BlobData, TinyClassifier

DEADLINE_S = 10.0


def test_reports_cover_the_fit_with_monotonic_fractions_ending_at_one() -> None:
    seen: list[TrainingProgress] = []
    reporter = ProgressReporter(seen.append, every_n_batches=2, threaded=False)
    Trainer(TrainerConfig(max_epochs=2, batch_size=16), [reporter]).fit(
        TinyClassifier(), BlobData()
    )  # 6 batches
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)
    assert (seen[0].phase, seen[0].fraction, seen[0].epoch) == ("started", 0.0, 1)
    assert (seen[-1].phase, seen[-1].fraction) == ("completed", 1.0)
    batches = [p for p in seen if p.phase == "training"]
    assert [(p.epoch, p.batch) for p in batches] == [(e, b) for e in (1, 2) for b in (2, 4, 6)]
    assert batches[0].message.startswith("epoch 1/2, batch 2/6")
    assert batches[0].fraction == pytest.approx(2 / 6 / 2)
    assert all("loss" in p.metrics for p in batches)
    epoch_ends = [p for p in seen if p.phase == "epoch_end"]
    assert [p.fraction for p in epoch_ends] == [0.5, 1.0]
    assert [p.epoch for p in epoch_ends] == [1, 2]
    assert epoch_ends[0].message.startswith("epoch 1/2 done")
    assert "val_loss" in epoch_ends[0].metrics


def test_min_interval_spaces_batch_reports_but_keeps_each_epochs_last_batch() -> None:
    seen: list[TrainingProgress] = []
    ticks = iter(range(1000))  # a clock that advances one second per reading
    reporter = ProgressReporter(
        seen.append, every_n_batches=1, threaded=False, min_interval_s=2.5, clock=lambda: float(next(ticks))
    )
    Trainer(TrainerConfig(max_epochs=2, batch_size=16), [reporter]).fit(
        TinyClassifier(), BlobData()
    )  # 6 batches; batches 1..5 read the clock, 6 is the epoch's last and always reported
    batches = [(p.epoch, p.batch) for p in seen if p.phase == "training"]
    assert batches == [(1, 1), (1, 4), (1, 6), (2, 2), (2, 5), (2, 6)]


def test_listener_exception_is_logged_and_fit_completes(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken(progress: TrainingProgress) -> None:
        calls.append(progress.phase)
        raise RuntimeError("listener bug")

    reporter = ProgressReporter(broken, every_n_batches=1)
    with caplog.at_level(logging.ERROR):
        result = Trainer(TrainerConfig(max_epochs=2, batch_size=16), [reporter]).fit(
            TinyClassifier(), BlobData()
        )
    assert result.epochs_trained == 2
    assert calls[-1] == "completed"
    assert reporter.delivery is not None
    assert reporter.delivery.failures == len(calls)
    assert sum("progress listener failed" in r.getMessage() for r in caplog.records) == 1


def test_blocked_listener_does_not_block_training_and_gets_the_last_report_later() -> None:
    release = threading.Event()
    seen: list[TrainingProgress] = []

    def stuck(progress: TrainingProgress) -> None:
        assert release.wait(DEADLINE_S)
        seen.append(progress)

    reporter = ProgressReporter(stuck, every_n_batches=1, flush_timeout_s=0.05)
    result = Trainer(TrainerConfig(max_epochs=3, batch_size=8), [reporter]).fit(TinyClassifier(), BlobData())
    assert result.epochs_trained == 3
    assert not seen
    release.set()
    assert reporter.delivery is not None
    assert reporter.delivery.close(DEADLINE_S)
    assert seen[-1].phase == "completed"
    assert seen[-1].fraction == 1.0
    assert reporter.delivery.coalesced > 0
    assert len(seen) < reporter.delivery.posted
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)


def test_delivery_coalesces_only_consecutive_batch_reports() -> None:
    gate, seen = threading.Event(), []

    def slow(progress: TrainingProgress) -> None:
        assert gate.wait(DEADLINE_S)
        seen.append(progress.message)

    delivery = ProgressDelivery(slow)

    def post(phase: str, message: str) -> None:
        delivery.post(TrainingProgress(phase, message, 0.0, 0, 1))

    post("started", "s")  # taken by the thread (or waiting): either way delivered
    for message, phase in [("b1", "training"), ("b2", "training"), ("e", "epoch_end"), ("b3", "training")]:
        post(phase, message)
    gate.set()
    assert delivery.close(DEADLINE_S)
    assert "b2" in seen
    assert "e" in seen
    assert "b3" in seen
    assert "b1" not in seen


def test_every_n_batches_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        ProgressReporter(lambda p: None, every_n_batches=0)
