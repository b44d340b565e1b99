"""How much does Trainer.fit, with the executor's callbacks, cost over a hand-written PyTorch loop?

The flagship shape: the built-in MLP 48 -> 64 -> 32 -> 3 (dropout 0.1), 20k rows (10 % held out for
validation), batch 64, 5 epochs, one torch thread. The Trainer gets its callbacks from
``training_callbacks`` — the function ``ModelWorkload`` calls — on a run context built as the executor
builds it (progress tracker, telemetry file, run directory), so the benchmark cannot drift from what a
training runs with. Runs alternate (hand, trainer, trainer, hand, …) so drift in machine load hits both;
the median of the paired ratios is printed. Target: <= 1.03.

    .venv/bin/python benchmarks/trainer_overhead.py [--repeats 9] [--epochs 5] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from shared.trainkit import Trainer
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor.model_workload import model_steps, training_callbacks
from shared.trainkit.executor.progress import PipelineProgress
from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.executor.workload import RunContext, TrainingParams
from shared.trainkit.models import MLP, MLPSpec
from shared.trainkit.run_record import TELEMETRY_FILE
from shared.trainkit.seeding import attach_generator
from shared.trainkit.telemetry import Telemetry
from shared.trainkit.tensor_data import ArrayDataModule

FEATURES, CLASSES, ROWS = 48, 3, 20_000
STEPS = model_steps((), training=80, importance=0)


def synthetic(seed: int) -> ArrayDataModule:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ROWS, FEATURES)).astype(np.float32)
    y = ((x[:, :3].argmax(axis=1) + (x[:, 3] > 1.5)) % CLASSES).astype(np.int64)
    split = int(ROWS * 0.9)
    return ArrayDataModule((x[:split], y[:split]), (x[split:], y[split:]), None, seed=seed)


def model(seed: int) -> MLP:
    spec = MLPSpec(input_dim=FEATURES, output_dim=CLASSES, hidden_layers=[64, 32], dropout=0.1)
    return MLP(spec, generator=torch.Generator().manual_seed(seed))


def hand_loop(data: ArrayDataModule, params: TrainingParams) -> float:
    """The loop a careful user writes by hand: same model, optimizer, batches and validation."""
    torch.manual_seed(params.seed)
    module = model(params.seed)
    attach_generator(module, torch.Generator().manual_seed(params.seed))  # dropout as the Trainer runs it
    optimizer = module.configure_optimizers(params.learning_rate)
    train, val = data.train_dataloader(params.batch_size), data.val_dataloader(params.batch_size)
    assert val is not None
    val_loss = torch.zeros(())
    for _ in range(params.epochs):
        module.train()
        total = 0.0
        for batch_idx, batch in enumerate(train):
            loss = module.training_step(batch, batch_idx).loss
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
        module.eval()
        with torch.no_grad():
            val_loss, size, correct = torch.zeros(()), 0, 0
            for batch_idx, batch in enumerate(val):
                out = module.validation_step(batch, batch_idx)
                val_loss += out.loss * out.size
                size += out.size
                correct += int(out.correct or 0)
        _ = float(total), float(val_loss), correct
    return float(val_loss) / size


class _DiscardingSink:
    def save(self, artifact: ModelArtifact) -> ModelRef:
        raise AssertionError("the benchmark never persists a model")


def trainer_loop(data: ArrayDataModule, params: TrainingParams, runs: Path) -> float:
    """Trainer.fit with the executor's callbacks, on a run context built as the executor builds it."""
    run_dir = Path(tempfile.mkdtemp(dir=runs))
    telemetry = Telemetry(run_dir / TELEMETRY_FILE)
    reports: list[object] = []
    tracker = PipelineProgress(STEPS, lambda *report: reports.append(report), telemetry=telemetry)
    run = RunContext(tracker, CancelToken(), _DiscardingSink(), run_dir.name, run_dir, telemetry)
    tracker.start("training")
    trainer = Trainer(params.trainer_config(), callbacks=training_callbacks(params, run), cancel=run.cancel)
    result = trainer.fit(model(params.seed), data)
    telemetry.close()
    assert result.epochs_trained == params.epochs
    assert result.best_val_loss is not None
    return result.best_val_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 = least noise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = synthetic(seed=0)
    # Patience as the executor defaults it (5): installed, and unable to fire within 5 epochs.
    params = TrainingParams(epochs=args.epochs, batch_size=args.batch_size, seed=0, device="cpu")
    samples = int(ROWS * 0.9) * args.epochs
    times: dict[str, list[float]] = {"hand": [], "trainer": []}
    with tempfile.TemporaryDirectory() as runs:
        loops = {
            "hand": lambda: hand_loop(data, params),
            "trainer": lambda: trainer_loop(data, params, Path(runs)),
        }
        loops["trainer"](), loops["hand"]()  # warm-up: first-call allocations and lazy imports
        for repeat in range(args.repeats):
            for name in ("hand", "trainer") if repeat % 2 == 0 else ("trainer", "hand"):
                started = time.perf_counter()
                loops[name]()
                times[name].append(time.perf_counter() - started)
    hand, ours = (statistics.median(times[name]) for name in ("hand", "trainer"))
    paired = statistics.median(t / h for t, h in zip(times["trainer"], times["hand"], strict=True))
    print(
        f"MLP {FEATURES}-64-32-{CLASSES}, {ROWS:,} rows, batch {args.batch_size}, {args.epochs} epochs, "
        f"{args.threads} thread(s), {args.repeats} pairs, callbacks: "
        f"{', '.join(type(cb).__name__ for cb in training_callbacks(params, _probe_run()))}"
    )
    print(
        f"hand {samples / hand:,.0f} samples/s | Trainer.fit {samples / ours:,.0f} samples/s | "
        f"Trainer/hand {paired:.3f} (median of paired ratios; target <= 1.03)"
    )


def _probe_run() -> RunContext:
    telemetry = Telemetry(None)
    tracker = PipelineProgress(STEPS, lambda *report: None, telemetry=telemetry)
    return RunContext(tracker, CancelToken(), _DiscardingSink(), "probe", Path("."), telemetry)


if __name__ == "__main__":
    main()
