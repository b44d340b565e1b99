"""How much does Trainer.fit cost over a hand-written PyTorch loop doing the same work?

Same MLP, same synthetic data (50k x 32 features, 3 classes, 10 % held out for validation), same batch
size, epochs and seed; the Trainer runs with the callbacks the executor uses (a progress reporter and
early stopping that patience keeps from firing). Runs alternate (hand, trainer, hand, …) so drift in
machine load hits both; the medians of samples/s and their ratio are printed. Target: <= 3 % overhead.

    .venv/bin/python benchmarks/trainer_overhead.py [--repeats 5] [--epochs 2] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable, Iterator

import torch
from torch.nn import functional

from shared.trainkit import (
    Batch,
    DataModule,
    EarlyStopping,
    ProgressReporter,
    Trainer,
    TrainerConfig,
    TrainingProgress,
    TrainStepOutput,
    ValStepOutput,
)
from shared.trainkit.spi import TrainableModule

FEATURES, CLASSES, SAMPLES = 32, 3, 50_000


class Mlp(TrainableModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, CLASSES),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        return TrainStepOutput(loss=functional.cross_entropy(self(x), y))

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        x, y = batch
        logits = self(x)
        return ValStepOutput(
            loss=functional.cross_entropy(logits, y), size=len(y), correct=int((logits.argmax(1) == y).sum())
        )


class Shuffled:
    """Batches of a reshuffled (seeded) permutation each pass; shared by both loops."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, shuffle: bool) -> None:
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.x), generator=self.generator) if self.shuffle else None
        x, y = (self.x[order], self.y[order]) if order is not None else (self.x, self.y)
        for start in range(0, len(x), self.batch_size):
            yield x[start : start + self.batch_size], y[start : start + self.batch_size]


class Synthetic(DataModule):
    def __init__(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(SAMPLES, FEATURES, generator=generator)
        y = (x[:, :3].argmax(dim=1) + (x[:, 3] > 1.5).long()) % CLASSES
        split = int(SAMPLES * 0.9)
        self.train, self.val = (x[:split], y[:split]), (x[split:], y[split:])
        self.seed = seed

    def train_dataloader(self, batch_size: int) -> Iterable[Batch]:
        return Shuffled(*self.train, batch_size, self.seed, shuffle=True)

    def val_dataloader(self, batch_size: int) -> Iterable[Batch] | None:
        return Shuffled(*self.val, batch_size, self.seed, shuffle=False)


def hand_loop(data: Synthetic, epochs: int, batch_size: int, seed: int) -> float:
    """The loop a careful user writes by hand: same optimizer, same validation with accuracy."""
    torch.manual_seed(seed)
    model = Mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train, val = data.train_dataloader(batch_size), data.val_dataloader(batch_size)
    assert val is not None
    for _ in range(epochs):
        model.train()
        total = torch.zeros(())
        for x, y in train:
            loss = functional.cross_entropy(model(x), y)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.detach()
        model.eval()
        with torch.no_grad():
            val_loss, correct = torch.zeros(()), 0
            for x, y in val:
                logits = model(x)
                val_loss += functional.cross_entropy(logits, y) * len(y)
                correct += int((logits.argmax(1) == y).sum())
        _ = float(total), float(val_loss), correct
    return float(val_loss) / len(data.val[0])


def trainer_loop(data: Synthetic, epochs: int, batch_size: int, seed: int) -> float:
    reports: list[TrainingProgress] = []
    callbacks = [ProgressReporter(reports.append, every_n_batches=50), EarlyStopping(patience=10_000)]
    config = TrainerConfig(max_epochs=epochs, batch_size=batch_size, seed=seed, device="cpu")
    result = Trainer(config, callbacks).fit(Mlp(), data)
    assert result.best_val_loss is not None
    return result.best_val_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 = least noise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Synthetic(seed=0)
    samples = len(data.train[0]) * args.epochs
    wall: dict[str, list[float]] = {"hand": [], "trainer": []}
    cpu: dict[str, list[float]] = {"hand": [], "trainer": []}
    loops = {"hand": hand_loop, "trainer": trainer_loop}
    trainer_loop(data, 1, args.batch_size, 0)  # warm-up: first-call allocations and lazy imports
    hand_loop(data, 1, args.batch_size, 0)
    for repeat in range(args.repeats):
        order = ("hand", "trainer") if repeat % 2 == 0 else ("trainer", "hand")
        for name in order:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            loops[name](data, args.epochs, args.batch_size, repeat)
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    print(f"batch_size={args.batch_size} epochs={args.epochs} repeats={args.repeats} threads={args.threads}")
    for label, times in (("wall", wall), ("cpu ", cpu)):
        hand, ours = (statistics.median(times[name]) for name in ("hand", "trainer"))
        paired = statistics.median(t / h for t, h in zip(times["trainer"], times["hand"], strict=True))
        print(
            f"{label}: hand {samples / hand:10,.0f} samples/s | Trainer.fit {samples / ours:10,.0f} samples/s | "
            f"overhead {100 * (ours / hand - 1):+.2f} % (median of paired ratios {100 * (paired - 1):+.2f} %)"
        )


if __name__ == "__main__":
    main()
