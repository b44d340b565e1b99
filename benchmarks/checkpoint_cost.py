"""What do resumable training checkpoints cost the flagship training, through the executor's real path?

The flagship workload (strategy ``trend_momentum`` on sample EURUSD 1h candles) run by
``TrainingExecutor.execute`` exactly as the backend runs it (run folder, progress, telemetry, model
store), once with the default checkpoint policy (every epoch, at most every 30 s from the fit's start,
last 2 kept: a training shorter than that writes none) and once without checkpoints, alternating (with,
without, without, with, …) so drift in machine load hits both. Prints the medians, the median of the paired ratios and the checkpoint size. Target: < 1.02.

``--min-interval 0`` writes one every epoch: the worst case, for a training whose epochs are short;
``--epochs 200 --min-interval 0.5`` a checkpoint every half second of a ~3 s training.

    .venv/bin/python benchmarks/checkpoint_cost.py [--pairs 5] [--epochs 20] [--rows 6000] [--min-interval 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.contracts.training import TrainingOverrides, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.executor import checkpoint_folder
from shared.trainkit.executor.workload import CheckpointPolicy
from shared.trainkit.resume import training_checkpoints
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.strategy.sample_data import write_sample_data

REPO = Path(__file__).resolve().parents[1]


def request(epochs: int) -> TrainingRequest:
    return TrainingRequest.model_validate(
        {
            "strategy_name": "trend_momentum",
            "strategy_yaml": (REPO / "strategies" / "trend_momentum.yaml").read_text(),
            "symbols": ["EURUSD"],
            "timeframes": ["1h"],
            "overrides": TrainingOverrides(epochs=epochs, early_stopping_patience=0),
        }
    )


def timed(executor: TrainingExecutor, epochs: int, name: str) -> float:
    started = time.perf_counter()
    executor.execute(request(epochs), lambda update: None, CancelToken(), run_name=name)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--min-interval", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_sample_data(root / "data", symbols=("EURUSD",), timeframes=("1h",), rows=args.rows)
        policy = CheckpointPolicy(min_interval_s=args.min_interval)
        store = ModelStorage(root / "models")
        runs = {
            "with": TrainingExecutor(root / "data", store, run_root=root / "runs", checkpoints=policy),
            "without": TrainingExecutor(root / "data", store, run_root=root / "runs"),
        }
        timed(runs["without"], 2, "warm-up")
        times: dict[str, list[float]] = {"with": [], "without": []}
        for pair in range(args.pairs):
            order = ("with", "without") if pair % 2 == 0 else ("without", "with")
            for kind in order:
                times[kind].append(timed(runs[kind], args.epochs, f"{kind}-{pair}"))
        written = training_checkpoints(checkpoint_folder(root / "runs" / "with-0"))
        size = written[0].stat().st_size if written else 0
    ratios = [w / wo for w, wo in zip(times["with"], times["without"], strict=True)]
    print(
        f"flagship: trend_momentum, {args.rows} rows, {args.epochs} epochs, min interval {args.min_interval}s"
    )
    print(f"without checkpoints: median {statistics.median(times['without']):.3f}s  {times['without']}")
    print(f"with checkpoints:    median {statistics.median(times['with']):.3f}s  {times['with']}")
    print(f"checkpoint size: {size} bytes; kept: {[p.name for p in written]}")
    print(f"median paired ratio with/without: {statistics.median(ratios):.4f} (target < 1.02)")


if __name__ == "__main__":
    main()
