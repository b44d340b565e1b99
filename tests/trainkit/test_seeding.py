"""Randomness scoped to a fit: parallel fits reproduce their single-threaded results, and a fit leaves
the process-wide RNGs and deterministic-kernel setting as it found them."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from shared.trainkit.config import TrainerConfig
from shared.trainkit.models import MLPSpec, build_model
from shared.trainkit.seeding import GeneratorDropout, deterministic_kernels
from shared.trainkit.spi import Callback, TrainableModule, TrainStepOutput
from shared.trainkit.tensor_data import ArrayDataModule
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import BlobData, TinyClassifier

DEADLINE_S = 30.0
Outcome = tuple[list[float], list[torch.Tensor]]


class _LockStep(Callback):
    """Makes two fits alternate batch by batch, so any shared random stream would be interleaved."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self.barrier.wait(DEADLINE_S)

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainableModule, output: TrainStepOutput, batch_idx: int
    ) -> None:
        self.barrier.wait(DEADLINE_S)


def _fit_mlp(seed: int, callbacks: Sequence[Callback] = ()) -> Outcome:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)
    data = ArrayDataModule((x[:64], y[:64]), (x[64:], y[64:]), None, seed=3)
    model = build_model(MLPSpec(4, 3, [32], dropout=0.5), generator=torch.Generator().manual_seed(0))
    config = TrainerConfig(max_epochs=2, batch_size=16, learning_rate=0.05, seed=seed)
    result = Trainer(config, callbacks).fit(model, data)
    return [m.train_loss for m in result.history], [p.detach().clone() for p in model.parameters()]


def _assert_same(a: Outcome, b: Outcome) -> None:
    assert a[0] == b[0]
    assert all(torch.equal(p, q) for p, q in zip(a[1], b[1], strict=True))


def test_two_fits_in_parallel_threads_reproduce_their_single_threaded_results() -> None:
    alone = {seed: _fit_mlp(seed) for seed in (1, 2)}
    assert alone[1][0] != alone[2][0]  # the seed reaches dropout: the test can tell the fits apart
    barrier = threading.Barrier(2)
    together: dict[int, Outcome] = {}
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            together[seed] = _fit_mlp(seed, [_LockStep(barrier)])
        except BaseException as exc:  # reported below, with the other thread released
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    for seed in (1, 2):
        _assert_same(together[seed], alone[seed])


def test_a_fit_leaves_the_callers_global_random_streams_where_they_were() -> None:
    def draws() -> tuple[float, float, float]:
        return torch.rand(1).item(), float(np.random.random_sample()), random.random()

    module, data = TinyClassifier(), BlobData()  # built first: TinyClassifier seeds torch itself
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    expected = draws()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    Trainer(TrainerConfig(max_epochs=1, batch_size=32, seed=7)).fit(module, data)
    assert draws() == expected


class _OtherThreadGoesDeterministic(Callback):
    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        torch.use_deterministic_algorithms(True)  # as a deterministic fit elsewhere in the process would


def test_a_non_deterministic_fit_does_not_touch_the_process_wide_setting() -> None:
    try:
        Trainer(TrainerConfig(max_epochs=1, batch_size=48), [_OtherThreadGoesDeterministic()]).fit(
            TinyClassifier(), BlobData()
        )
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_overlapping_deterministic_fits_restore_the_setting_only_when_the_last_ends() -> None:
    assert not torch.are_deterministic_algorithms_enabled()
    first, second = deterministic_kernels(True), deterministic_kernels(True)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert torch.are_deterministic_algorithms_enabled()  # the second fit still runs
    second.__exit__(None, None, None)
    assert not torch.are_deterministic_algorithms_enabled()


def test_generator_dropout_draws_its_masks_from_the_given_generator() -> None:
    layer = GeneratorDropout(0.5)
    x = torch.ones(4, 64)
    layer.generator = torch.Generator().manual_seed(5)
    first = layer(x)
    layer.generator = torch.Generator().manual_seed(5)
    torch.manual_seed(99)  # the global stream does not matter
    assert torch.equal(layer(x), first)
    assert set(first.unique().tolist()) == {0.0, 2.0}
    layer.eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError, match="probability"):
        GeneratorDropout(1.0)
