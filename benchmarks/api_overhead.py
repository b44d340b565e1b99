"""The same training run directly through TrainingExecutor and through the API (submit + poll).

Target: API time / direct time <= 1.02. Usage: python benchmarks/api_overhead.py [--epochs 60 --runs 3]

Direct and API runs alternate so that machine noise hits both alike; the training is long enough (several
seconds) that what is measured is the cost of running under the service, not process start-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.backend_process import BackendProcess
from shared.contracts.training import TrainingOverrides, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from tests.servers import REPO

STRATEGY = "trend_momentum"
# A client polling as a person's script would; completion is timed by the server's completed_at (same
# machine, same clock), so the poll interval neither adds detection latency nor, at this rate, load.
POLL_INTERVAL_S = 0.5


def direct_run(data_dir: Path, models_dir: Path, epochs: int) -> float:
    request = TrainingRequest(
        strategy_name=STRATEGY,
        strategy_yaml=(REPO / "strategies" / f"{STRATEGY}.yaml").read_text(),
        symbols=["EURUSD"],
        timeframes=["1h"],
        overrides=TrainingOverrides(epochs=epochs, early_stopping_patience=10_000),
    )
    executor = TrainingExecutor(data_dir, ModelStorage(models_dir))
    started = time.perf_counter()
    executor.execute(request, lambda _update: None, CancelToken())
    return time.perf_counter() - started


def api_run(client: httpx.Client, epochs: int) -> float:
    body = {
        "strategy": STRATEGY,
        "symbol": "EURUSD",
        "timeframe": "1h",
        "overrides": {"epochs": epochs, "early_stopping_patience": 10_000},
    }
    started = time.time()
    op_id = client.post("/api/v1/trainings", json=body).json()["operation_id"]
    deadline = started + 600
    while time.time() < deadline:
        operation = client.get(f"/api/v1/operations/{op_id}").json()
        status = operation["status"]
        if status in ("completed", "failed", "cancelled"):
            if status != "completed":
                raise RuntimeError(f"operation {op_id} ended {status}")
            return datetime.fromisoformat(operation["completed_at"]).timestamp() - started
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError("training through the API did not finish within 600 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        write_sample_data(data_dir)
        direct_run(data_dir, root / "warmup", 1)  # imports and first-touch costs out of the way
        direct: list[float] = []
        api: list[float] = []
        server = BackendProcess(root / "api", data_dir, MODELYARD_GENERATE_SAMPLE_DATA="false")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                api_run(client, 1)
                for _ in range(args.runs):
                    direct.append(direct_run(data_dir, root / "direct", args.epochs))
                    api.append(api_run(client, args.epochs))
        finally:
            server.stop()
    d, a = statistics.median(direct), statistics.median(api)
    print(f"epochs={args.epochs} runs={args.runs}")
    print(f"direct  median {d:.3f} s  runs {[round(x, 3) for x in direct]}")
    print(f"via API median {a:.3f} s  runs {[round(x, 3) for x in api]} (poll every {POLL_INTERVAL_S} s)")
    print(f"ratio {a / d:.3f} (target <= 1.02)")


if __name__ == "__main__":
    main()
