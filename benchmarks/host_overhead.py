"""How much longer does a short training take in host mode than in local mode, over real HTTP?

A real backend and one real host service (separate processes on 127.0.0.1, signed requests, the host
downloading its data from the backend), built by the e2e helpers. Each pair runs the same training
(trend_momentum on EURUSD 1h candles, 5 epochs) once locally and once on the host, in alternating order, and
times it from the POST to the operation read back as completed (polled every 20 ms). Prints the medians
and the median of the paired host/local ratios. Target: <= 1.2.

The candles default to the sample data's size (``sample_data.DEFAULT_ROWS``, 5,000): the data a new user
trains on after ``make run``. ``--rows`` trains on fewer or more (fewer makes the training shorter, so the
same fixed host overhead weighs more in the ratio).

Also prints the time each mode spends outside the training's own steps (the POST to completed minus the
``step.*`` timers the execution records: data loading through saving): what host mode adds (dispatch,
the child's start, status, the hand-off) apart from the training itself, whose speed swings with the
machine's load far more than these edges do. Like with like: both modes go through the same backend and
the same polling, and both train on cores - 1 torch threads (the backend's in-process trainings and the
host's children alike). The machine's load average is printed with the result: on a busy machine every
extra process hop of host mode (backend -> host -> child -> host -> backend) waits for a time slice.

Both services run on the product's default intervals (health checks, polls, heartbeats, progress
writes), as ``make run`` gives them to a user; ``--test-intervals`` runs them on the e2e tests' short
ones instead (health checks every 0.3 s, host polls from 0.2 s, progress written every 0.2 s), as this
benchmark did until Dec 2026.

What bounds it: host mode adds a near-constant ~45 ms to the training, whatever its length (0.39 vs
0.44 s on a slow day, 0.18 vs 0.225 s on a fast one), so the ratio misses 1.2 for trainings shorter than
~0.23 s locally and meets it above (a 15-epoch training, ``--epochs 15``, on a fast day: local 0.33 s,
host 0.37 s, 1.13). Timestamped timelines of both services and the child (CLOCK_MONOTONIC, medians of 20
pairs, Dec 2026, fast day): the child starts ~4 ms after a local training would (the start call, the
hand-over to the idle worker); its execution takes ~25 ms longer (160 vs 135 ms), of which ~12 ms is
its own CPU (2,900 minor page faults against 85 in the backend's long-lived thread: copy-on-write of
the pages it inherits from the fork server, ~2.5 us each here, and caches cold in a new process) and
the rest waiting for a core it shares on 2 cores with both services and the next idle worker's fork
and warm-up (~15 ms of CPU; 50-150 involuntary context switches against ~10); then the hand-off takes
~25 ms where a local training completes ~3 ms after its steps: the result folder written (~2 ms), the
outcome reaching the host (~2 ms), the payload built (~3 ms), the POST reaching its route (~3 ms), the
signature and its replay record (~2 ms), the inline model decoded and validated (~4 ms), the version
stored (~5 ms: written, fsynced, renamed, the latest link) and the operation completed (~3 ms). Tried
and measured without effect: freezing the idle worker's objects out of the garbage collector, malloc
kept from returning memory, fewer progress messages from the child (53 to 23 per training); forking
the next idle worker only at the session's end moved its cost onto the hand-off. The per-step line
printed shows where the child's extra execution time falls.

    .venv/bin/python benchmarks/host_overhead.py [--pairs 5] [--epochs 5] [--rows N] [--test-intervals]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.trainkit.workloads.strategy.sample_data import DEFAULT_ROWS, write_sample_data
from tests.e2e.host_cluster import Api, backend_process, host_process, start_all, wait_until

POLL_S = 0.02


def timed_training(api: Api, mode: str, epochs: int) -> tuple[float, dict[str, float]]:
    """Seconds from the POST to completed, and the seconds of each of the execution's steps."""
    started = time.perf_counter()
    op_id = api.start(epochs=epochs, mode=mode)
    op = wait_until(lambda: _ended(api, op_id), 120, f"{mode} training {op_id} to end", every=POLL_S)
    elapsed = time.perf_counter() - started
    if op["status"] != "completed" or op["execution_mode"] != mode:
        raise RuntimeError(f"{mode} training ended {op['status']} in mode {op['execution_mode']}: {op}")
    telemetry = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["telemetry"]
    steps = {name: stats["total_s"] for name, stats in telemetry.items() if name.startswith("step.")}
    return elapsed, steps


def _ended(api: Api, op_id: str) -> dict[str, object] | None:
    op = api.op(op_id)
    return op if op["status"] in ("completed", "failed", "cancelled") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help="candles (default: the sample data's, as a new user trains)",
    )
    parser.add_argument(
        "--test-intervals",
        action="store_true",
        help="health checks, polls and heartbeats at the e2e tests' short intervals, not the product's "
        "defaults (what make run gives a user)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_sample_data(root / "backend" / "data", symbols=("EURUSD",), timeframes=("1h",), rows=args.rows)
        host = host_process(root / "host", test_intervals=args.test_intervals)
        backend = backend_process(root / "backend", [host.url], test_intervals=args.test_intervals)
        processes = [host, backend]
        try:
            start_all(processes)
            api = Api(backend)
            wait_until(lambda: api.hosts_healthy(1), 30, "the host to be healthy")
            times: dict[str, list[float]] = {"local": [], "host": []}
            outside: dict[str, list[float]] = {"local": [], "host": []}
            steps: dict[str, dict[str, list[float]]] = {"local": {}, "host": {}}
            timed_training(api, "local", 1), timed_training(api, "host", 1)  # warm-up: data, caches
            for pair in range(args.pairs):
                for mode in ("local", "host") if pair % 2 == 0 else ("host", "local"):
                    elapsed, its_steps = timed_training(api, mode, args.epochs)
                    times[mode].append(elapsed)
                    outside[mode].append(elapsed - sum(its_steps.values()))
                    for name, seconds in its_steps.items():
                        steps[mode].setdefault(name, []).append(seconds)
            api.close()
        finally:
            for process in processes:
                process.kill()
    local, remote = (statistics.median(times[mode]) for mode in ("local", "host"))
    ratio = statistics.median(h / loc for h, loc in zip(times["host"], times["local"], strict=True))
    intervals = "the e2e tests'" if args.test_intervals else "the product's default"
    print(
        f"{args.epochs}-epoch training, {args.pairs} pairs, POST to completed over real HTTP, {intervals} intervals"
    )
    print(
        f"local {local:.2f} s | host {remote:.2f} s | host/local {ratio:.2f} (median of paired ratios; target <= 1.2)"
    )
    local_edges, host_edges = (statistics.median(outside[mode]) for mode in ("local", "host"))
    print(f"outside the training's steps (medians): local {local_edges:.3f} s | host {host_edges:.3f} s")
    names = sorted(steps["local"].keys() | steps["host"].keys())
    print(
        "each step (medians, ms, local/host): "
        + ", ".join(
            f"{name[5:]} {_median_ms(steps['local'], name)}/{_median_ms(steps['host'], name)}"
            for name in names
        )
    )
    print(
        f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )


def _median_ms(steps: dict[str, list[float]], name: str) -> str:
    return f"{statistics.median(steps[name]) * 1000:.1f}" if name in steps else "-"


if __name__ == "__main__":
    main()
