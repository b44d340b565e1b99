"""Ray mode's overhead on a real local Ray cluster (2 CPUs, loopback), against local mode, in one run.

1. Ray's own submit → RUNNING: a trivial job (``true``) through the Jobs SDK, ``--ray-probes`` times.
2. modelyard's submit → running (the operation claimed after Ray took the job) and → first epoch.
3. The same strategy training (``--epochs``, default sized for ~10 s locally) in ray mode and in local
   mode, alternating, ``--pairs`` times; the median of the paired ray/local wall-time ratios.
   Target: <= 1.3x for a 10 s training.
4. ``--burst`` trainings (default 20) submitted at once, each reserving 1 CPU of the 2: all must
   complete, and never more than 2 jobs RUNNING at once (Ray's job list polled every 0.2 s).
5. The RSS of the cluster's processes, idle and at the end (summed per process: shared pages count once
   per process, so an upper bound).

    .venv/bin/python benchmarks/ray_overhead.py [--pairs 3] [--epochs 100] [--rows 12000] [--burst 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.adapters.ray_jobs import RayJobsClient
from backend.domain.ray_cluster import JobResources, RayJobStatus
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from tests.e2e.host_cluster import Api, backend_process, wait_until
from tests.ray.cluster import LocalRay, start_local_ray

POLL_S = 0.02
ENTRYPOINT = str(Path(sys.executable).parent / "modelyard")


def rss_mib(cluster: LocalRay) -> tuple[float, int]:
    found = cluster.processes()
    return sum(rss for _, rss, _ in found) / 1024, len(found)


def ray_submit_to_running(jobs: RayJobsClient, probes: int) -> list[float]:
    times = []
    for n in range(probes):
        submission = f"probe-{n}-{time.time_ns()}"
        started = time.perf_counter()
        jobs.submit(submission, "sleep 2", env={}, resources=JobResources(cpus=1))
        wait_until(
            lambda s=submission: _status(jobs, s) is not RayJobStatus.PENDING, 120, "probe RUNNING", POLL_S
        )
        times.append(time.perf_counter() - started)
        wait_until(lambda s=submission: _finished(jobs, s), 60, "probe done", 0.2)
    return times


def _status(jobs: RayJobsClient, submission: str) -> RayJobStatus | None:
    job = jobs.job(submission)
    return job.status if job else None


def _finished(jobs: RayJobsClient, submission: str) -> bool:
    job = jobs.job(submission)
    return job is not None and job.finished


def timed_training(api: Api, mode: str, epochs: int) -> dict[str, float]:
    started = time.perf_counter()
    op_id = api.start(epochs=epochs, mode=mode)
    marks: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        op = api.op(op_id)
        now = time.perf_counter() - started
        if op["status"] in ("running", "completed") and "running" not in marks:
            marks["running"] = now
        if (op["progress"].get("epoch") or 0) >= 1 and "epoch1" not in marks:
            marks["epoch1"] = now
        if op["status"] in ("completed", "failed", "cancelled"):
            if op["status"] != "completed":
                raise AssertionError(f"{mode} training ended {op['status']}: {op.get('error')}")
            marks["total"] = now
            return marks
        time.sleep(POLL_S)
    raise AssertionError(f"{mode} training did not finish")


def burst(api: Api, jobs: RayJobsClient, count: int) -> tuple[int, int, float]:
    """(completed, most RUNNING at once, seconds) for ``count`` trainings submitted together."""
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            running = sum(
                1
                for j in jobs.jobs()
                if j.status is RayJobStatus.RUNNING and j.submission_id.startswith("op_")
            )
            peak = max(peak, running)
            stop.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    ids = [api.start(epochs=1, mode="ray", resources={"cpus": 1}) for _ in range(count)]
    ended = [api.finished(op_id, timeout=1800) for op_id in ids]
    elapsed = time.perf_counter() - started
    stop.set()
    watcher.join(5)
    return sum(1 for op in ended if op["status"] == "completed"), peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--ray-probes", type=int, default=3)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()

    cluster_started = time.perf_counter()
    cluster = start_local_ray()
    print(f"ray start --head (2 CPUs): {time.perf_counter() - cluster_started:.1f} s")
    try:
        time.sleep(3)
        idle, count = rss_mib(cluster)
        print(f"Ray RSS idle: {idle:.0f} MiB over {count} processes")
        jobs = RayJobsClient(cluster.address, timeout_s=10)
        probes = ray_submit_to_running(jobs, args.ray_probes)
        print(
            f"Ray submit -> RUNNING (trivial job): median {statistics.median(probes):.2f} s {[round(t, 2) for t in probes]}"
        )
        with tempfile.TemporaryDirectory(prefix="ray-overhead-") as tmp:
            folder = Path(tmp)
            (folder / "data").mkdir()
            write_sample_data(folder / "data", symbols=("EURUSD",), timeframes=("1h",), rows=args.rows)
            backend = backend_process(
                folder, [], ray_address=cluster.address, ray_entrypoint=ENTRYPOINT, ray_poll_s="0.1",
                ray_health_interval_s="1", generate_sample_data="false",
            )  # fmt: skip
            api = Api(backend)
            try:
                backend.launch()
                wait_until(backend.ready, 180, "the backend to answer /health", 0.2)
                wait_until(lambda: api.http.get("/api/v1/system").json()["ray"]["healthy"], 30, "ray healthy")
                ratios, rays, locals_ = [], [], []
                for pair in range(args.pairs):
                    order = ("ray", "local") if pair % 2 == 0 else ("local", "ray")
                    result = {mode: timed_training(api, mode, args.epochs) for mode in order}
                    rays.append(result["ray"])
                    locals_.append(result["local"]["total"])
                    ratios.append(result["ray"]["total"] / result["local"]["total"])
                    print(f"pair {pair}: ray {result['ray']}, local {result['local']['total']:.2f} s")
                print(
                    f"submit -> running (ray, claimed): median {statistics.median(r['running'] for r in rays):.2f} s"
                )
                print(
                    f"submit -> first epoch (ray): median {statistics.median(r['epoch1'] for r in rays):.2f} s"
                )
                print(f"training of {args.epochs} epochs: ray median {statistics.median(r['total'] for r in rays):.2f} s, "
                      f"local median {statistics.median(locals_):.2f} s")  # fmt: skip
                print(
                    f"ray/local ratio: median {statistics.median(ratios):.2f} (target <= 1.3) {[round(r, 2) for r in ratios]}"
                )
                busy, count = rss_mib(cluster)
                print(f"Ray RSS after the trainings: {busy:.0f} MiB over {count} processes")
                if args.burst:
                    done, peak, seconds = burst(api, jobs, args.burst)
                    print(
                        f"burst of {args.burst} (1 CPU each, 2 CPUs): {done} completed, at most {peak} running at once, {seconds:.0f} s"
                    )
            finally:
                api.close()
                backend.kill()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
