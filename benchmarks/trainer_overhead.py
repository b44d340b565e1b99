"""How much does a training's fit, as the backend runs it, cost over a hand-written PyTorch loop?

The flagship shape: the built-in MLP 48 -> 64 -> 32 -> 3 (dropout 0.1), 20k rows (10 % held out for
validation), batch 64, 5 epochs, one torch thread. The training goes through the backend's own engine
(``ExecutorEngine``, built with the backend's default settings: a run folder per training, resumable
checkpoints) as a plugin training whose factory (``flagship`` below) returns this model and data, so
the Trainer, its callbacks and their run context are exactly those of a local training and cannot
drift from them. Its time is the executor's own ``step.training`` telemetry span (Trainer.fit with
every callback, from the training step's start to the evaluation's). Runs alternate (hand, trainer,
trainer, hand, …) so drift in machine load hits both; the median of the paired ratios is printed.
Target: <= 1.03. Beside it, the same ratio of process CPU time over the same span (every thread, so the
run's writer and progress threads count), which a loaded machine disturbs far less than wall time.

    .venv/bin/python benchmarks/trainer_overhead.py [--repeats 9] [--epochs 5] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.adapters.executor import ExecutorEngine
from backend.settings import Settings
from shared.contracts.training import ProgressUpdate, TrainingOverrides, TrainingRequest, Workload
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.executor.workload import TrainingParams
from shared.trainkit.models import MLP, MLPSpec
from shared.trainkit.seeding import attach_generator
from shared.trainkit.tensor_data import ArrayDataModule

FEATURES, CLASSES, ROWS = 48, 3, 20_000
FACTORY = "benchmarks.trainer_overhead:flagship"


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


def flagship() -> tuple[MLP, ArrayDataModule]:
    """The plugin factory the benchmark's trainings name (called by the plugin workload, seeded)."""
    return model(0), synthetic(seed=0)


class _DiscardingSink:
    """Stands in for the model store: persistence comes after the timed step."""

    def save(self, artifact: ModelArtifact) -> ModelRef:
        return ModelRef(artifact.strategy, artifact.name, 1, "(not stored)")


def backend_engine(runs: Path) -> ExecutorEngine:
    """The engine as the backend builds it (backend/components.py), with its default settings."""
    defaults = Settings.model_fields
    return ExecutorEngine(
        Path(runs) / "data",
        _DiscardingSink(),
        runs_dir=runs / "runs",
        plugin_allowlist=("benchmarks",),
        checkpoint_every_epochs=defaults["checkpoint_every_epochs"].default,
        checkpoint_min_interval_s=defaults["checkpoint_min_interval_s"].default,
    )


class PhaseCpu:
    """A progress listener noting the process's CPU time (every thread: the run's writers and the
    progress delivery too) at the first report of each phase: a step starts with its first report."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}

    def __call__(self, update: ProgressUpdate) -> None:
        self.first.setdefault(update.phase, time.process_time())

    def of(self, phase: str) -> float:
        phases = list(self.first)
        return self.first[phases[phases.index(phase) + 1]] - self.first[phase]


def trainer_loop(engine: ExecutorEngine, params: TrainingParams, run: int) -> tuple[float, float]:
    """One plugin training through the backend's engine; its ``step.training`` seconds, wall and CPU."""
    overrides = TrainingOverrides(
        epochs=params.epochs, batch_size=params.batch_size, seed=params.seed, device=params.device
    )
    request = TrainingRequest(workload=Workload.PLUGIN, plugin=FACTORY, overrides=overrides)
    cpu = PhaseCpu()
    result = engine.execute(request, cpu, CancelToken(), run_name=f"run-{run}")
    assert result.epochs_trained == params.epochs, result
    assert result.telemetry is not None
    return float(result.telemetry["step.training"]["total_s"]), cpu.of("training")


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
    times: dict[str, list[tuple[float, float]]] = {"hand": [], "trainer": []}  # (wall, CPU) seconds
    with tempfile.TemporaryDirectory() as runs:
        engine = backend_engine(Path(runs))
        runs_done = iter(range(1_000_000))

        def hand() -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            hand_loop(data, params)
            return time.perf_counter() - started, time.process_time() - cpu

        loops = {"hand": hand, "trainer": lambda: trainer_loop(engine, params, next(runs_done))}
        loops["trainer"](), loops["hand"]()  # warm-up: first-call allocations and lazy imports
        for repeat in range(args.repeats):
            for name in ("hand", "trainer") if repeat % 2 == 0 else ("trainer", "hand"):
                times[name].append(loops[name]())
        callbacks = _callbacks_of(Path(runs) / "runs" / "run-0")
    hand_s, ours = (statistics.median(wall for wall, _ in times[name]) for name in ("hand", "trainer"))
    pairs = list(zip(times["trainer"], times["hand"], strict=True))
    paired = statistics.median(t[0] / h[0] for t, h in pairs)
    paired_cpu = statistics.median(t[1] / h[1] for t, h in pairs)
    print(
        f"MLP {FEATURES}-64-32-{CLASSES}, {ROWS:,} rows, batch {args.batch_size}, {args.epochs} epochs, "
        f"{args.threads} thread(s), {args.repeats} pairs, through the backend's ExecutorEngine; "
        f"run folder: {callbacks}"
    )
    print(
        f"hand {samples / hand_s:,.0f} samples/s | Trainer.fit {samples / ours:,.0f} samples/s | "
        f"Trainer/hand {paired:.3f} (median of paired ratios; target <= 1.03)"
    )
    print(
        f"process CPU time (every thread; steadier than wall time on a loaded machine): "
        f"Trainer/hand {paired_cpu:.3f} (median of paired ratios)"
    )


def _callbacks_of(run_dir: Path) -> str:
    """What the callbacks left in a run folder: proof they ran (run record, telemetry, checkpoints)."""
    return ", ".join(sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
