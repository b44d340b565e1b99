"""Latency and throughput of GET /api/v1/operations/{id} under 100 concurrent pollers while a training runs.

Usage: python benchmarks/poll_load.py [--pollers 100 --seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.backend_process import BackendProcess
from shared.trainkit.workloads.strategy.sample_data import write_sample_data


async def poller(client: httpx.AsyncClient, path: str, until: float, latencies: list[float]) -> int:
    errors = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        response = await client.get(path)
        latencies.append(time.perf_counter() - started)
        errors += response.status_code != 200
    return errors


async def load(url: str, pollers: int, seconds: float) -> None:
    limits = httpx.Limits(max_connections=pollers, max_keepalive_connections=pollers)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        body = {
            "strategy": "trend_momentum",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "overrides": {"epochs": 10_000, "early_stopping_patience": 0},
        }
        op_id = (await client.post("/api/v1/trainings", json=body)).json()["operation_id"]
        deadline = time.perf_counter() + 60
        while (await client.get(f"/api/v1/operations/{op_id}")).json()["progress"]["phase"] != "training":
            if time.perf_counter() > deadline:
                raise RuntimeError("training never reached its training phase")
            await asyncio.sleep(0.1)
        latencies: list[float] = []
        until = time.perf_counter() + seconds
        errors = await asyncio.gather(
            *(poller(client, f"/api/v1/operations/{op_id}", until, latencies) for _ in range(pollers))
        )
        op = (await client.get(f"/api/v1/operations/{op_id}")).json()
        await client.post(f"/api/v1/operations/{op_id}/cancel")
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    print(f"pollers={pollers} seconds={seconds} requests={len(ordered)} errors={sum(errors)}")
    print(f"throughput {len(ordered) / seconds:.0f} req/s")
    print(
        f"latency p50 {p(0.50):.1f} ms  p99 {p(0.99):.1f} ms  max {ordered[-1] * 1000:.1f} ms  mean {statistics.mean(ordered) * 1000:.1f} ms"
    )
    result = op.get("result") or {}
    print(
        f"training during the load: status={op['status']} epoch={op['progress']['epoch']}"
        f" stop_reason={result.get('stop_reason')} error={op.get('error')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_sample_data(root / "data")
        server = BackendProcess(root / "api", root / "data", MODELYARD_GENERATE_SAMPLE_DATA="false")
        try:
            asyncio.run(load(server.url, args.pollers, args.seconds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
