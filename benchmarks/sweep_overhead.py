"""Sweep overhead and pruning savings, against a real backend server.

1. The same N trainings (seeds 1..N of one short strategy training) as a sweep at parallelism 1 (grid over
   the seed) and submitted one after another through the API by a client that waits for each (it reads
   the operation every 20 ms and submits the next one once it sees the end).
   Target: sweep time / sequential time <= 1.1. Until Dec 2026 that client looked every 0.2 s, idling
   ~0.1 s per training, and the ratio read 0.54; against a client that looks every 20 ms it is ~1.2 for
   these 3-epoch (~55 ms) trainings (1.20 and 1.22 on 1 Dec). A 2-trial sweep runs first: a backend's
   first parameter importances import optuna.importance and scikit-learn (~0.9 s holding the GIL, once
   per process), which slowed the trainings it overlapped by ~0.3 s (1.48 with it in). What the sweep adds
   per trial (py-spy of the backend, Dec 2026): after a trial ends its driver tells Optuna (~7 ms, SQL),
   asks for the next trial (~4 ms), records the trial row twice and starts the training through the same
   path as the API (~5 ms validating it), ~13 ms more than the client between two trainings; and each
   trial's training runs ~4 ms longer, sharing the process (and the GIL) with the driver's thread.
2. A median-pruned sweep where half the trials are clearly bad (learning rate 8.0 against 0.003): the
   fraction of epochs it did not train, against every trial running all its epochs.

Usage: python benchmarks/sweep_overhead.py [--trials 20 --epochs 3 --prune-epochs 10 --prune-seeds 5]
(``--prune-seeds 0`` runs the first part only.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backend_process
from benchmarks.backend_process import BackendProcess
from shared.trainkit.workloads.strategy.sample_data import write_sample_data

#: The sequential client's poll: it submits the next training once it sees one end, so it must look
#: often (at 0.2 s, as until Dec 2026, it waited ~0.1 s per training for nothing: the sweep looked fast).
POLL_S = 0.02
#: The sweep's end is its own ``completed_at``, so its view is read rarely (a view costs more than an
#: operation's read, and reading it every 20 ms would load the machine the trials train on).
SWEEP_POLL_S = 0.5
BASE: dict[str, Any] = {"strategy": "trend_momentum", "symbol": "EURUSD", "timeframe": "1h"}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def sequential(client: httpx.Client, trials: int, epochs: int) -> tuple[float, list[str]]:
    """Submit, wait for the end, submit the next: the last end minus the first submit, and the ops."""
    started = time.time()
    end = started
    ops = []
    for seed in range(1, trials + 1):
        body = {**BASE, "overrides": {"epochs": epochs, "early_stopping_patience": 10_000, "seed": seed}}
        op_id = client.post("/api/v1/trainings", json=body).json()["operation_id"]
        ops.append(op_id)
        while True:
            op = client.get(f"/api/v1/operations/{op_id}").json()
            if op["status"] in ("completed", "failed", "cancelled"):
                end = _ts(op["completed_at"])
                break
            time.sleep(POLL_S)
    return end - started, ops


def training_time(client: httpx.Client, op_ids: list[str]) -> float:
    """The seconds the operations spent running (started -> completed), summed."""
    total = 0.0
    for op_id in op_ids:
        op = client.get(f"/api/v1/operations/{op_id}").json()
        total += _ts(op["completed_at"]) - _ts(op["started_at"])
    return total


def sweep(client: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.time()
    response = client.post("/api/v1/sweeps", json=body)
    response.raise_for_status()
    sweep_id = response.json()["sweep_id"]
    while True:
        view = client.get(f"/api/v1/sweeps/{sweep_id}").json()
        if view["status"] in ("completed", "failed", "cancelled"):
            return _ts(view["completed_at"]) - started, view
        time.sleep(SWEEP_POLL_S)


def warm_up_sweeps(client: httpx.Client) -> None:
    """A 2-trial sweep to its end and its view read: the process's first parameter importances import
    optuna.importance (and scikit-learn with it, ~0.9 s holding the GIL), once per backend; left in the
    measured sweep, it slowed the trainings it overlapped by ~0.3 s in all."""
    body = {
        "base": {**BASE, "overrides": {"epochs": 1}},
        "space": {"overrides.seed": {"type": "int", "low": 1, "high": 2, "step": 1}},
        "objective": {"metric": "val_loss"},
        "n_trials": 2,
        "sampler": "grid",
        "pruner": "none",
    }
    _, view = sweep(client, body)
    if view.get("importances") is None:
        client.get(f"/api/v1/sweeps/{view['sweep_id']}")


def overhead(client: httpx.Client, trials: int, epochs: int) -> None:
    body = {
        "base": {**BASE, "overrides": {"epochs": epochs, "early_stopping_patience": 10_000}},
        "space": {"overrides.seed": {"type": "int", "low": 1, "high": trials, "step": 1}},
        "objective": {"metric": "val_loss"},
        "n_trials": trials,
        "parallelism": 1,
        "sampler": "grid",
        "pruner": "none",
    }
    seq, seq_ops = sequential(client, trials, epochs)
    swept, view = sweep(client, body)
    print(f"{trials} trainings of {epochs} epoch(s): sequential through the API {seq:.2f} s "
          f"({seq / trials:.2f} s each), as a sweep {swept:.2f} s ({view['counts']})")  # fmt: skip
    print(f"sweep / sequential ratio {swept / seq:.3f} (target <= 1.1)")
    # On a loaded machine the trainings' own time swings: what each way adds around them is steadier.
    seq_run = training_time(client, seq_ops)
    sweep_run = training_time(client, [t["operation_id"] for t in view["trials"]])
    print(f"time outside the trainings, per training: sequential {(seq - seq_run) / trials:.3f} s, "
          f"sweep {(swept - sweep_run) / trials:.3f} s (trainings ran {seq_run:.2f} s and {sweep_run:.2f} s)")  # fmt: skip


def pruning(client: httpx.Client, epochs: int, seeds: int) -> None:
    body = {
        "base": {**BASE, "overrides": {"epochs": epochs, "early_stopping_patience": 10_000}},
        "space": {
            "overrides.learning_rate": {"type": "categorical", "choices": [0.003, 8.0]},
            "overrides.seed": {"type": "int", "low": 1, "high": seeds, "step": 1},
        },
        "objective": {"metric": "val_loss"},
        "n_trials": 2 * seeds,
        "parallelism": 1,
        "sampler": "grid",
        "pruner": "median",
    }
    _, view = sweep(client, body)
    trained = 0
    for trial in view["trials"]:
        op = client.get(f"/api/v1/operations/{trial['operation_id']}").json()
        trained += int(op["progress"].get("epoch") or 0)
    full = len(view["trials"]) * epochs
    pruned = view["counts"].get("pruned", 0)
    print(f"median pruner, {len(view['trials'])} trials (half at learning rate 8.0), {epochs} epochs each: "
          f"{pruned} pruned, {trained}/{full} epochs trained, fraction of epochs saved {1 - trained / full:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--prune-epochs", type=int, default=10)
    parser.add_argument(
        "--prune-seeds",
        type=int,
        default=5,
        help="Seeds per learning rate in the pruned sweep (2 x this many trials); 0 skips that part.",
    )
    parser.add_argument(
        "--start-deadline", type=float, default=180.0, help="Seconds the server may take to start."
    )
    args = parser.parse_args()
    backend_process.START_DEADLINE_S = args.start_deadline  # a loaded machine starts it slowly
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        write_sample_data(data_dir, symbols=("EURUSD",), timeframes=("1h",), rows=1500, seed=3)
        server = BackendProcess(root / "api", data_dir, MODELYARD_GENERATE_SAMPLE_DATA="false")
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                sequential(client, 1, 1)  # first-touch costs out of the way
                warm_up_sweeps(client)
                overhead(client, args.trials, args.epochs)
                if args.prune_seeds > 0:  # no seeds, no pruned sweep: a sweep of 0 trials is a 422
                    pruning(client, args.prune_epochs, args.prune_seeds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
