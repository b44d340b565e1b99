"""CPU per request of the poll path, in-process: the backend app called as ASGI (no server, no socket)
beside a trivial one-route FastAPI app (benchmarks/trivial_server.py's), so what the backend adds —
middleware, routing, dependencies, serialization — is measured without the network and far less
disturbed by a loaded machine than wall-clock throughput (process CPU time, not elapsed time).

Complements ``poll_load.py``: with uvicorn's own per-request cost U (the same for both apps), the
closed-loop ratio to the trivial app is about (U + trivial) / (U + ours).

    python benchmarks/request_cpu.py [--requests 3000] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.trivial_server import app as trivial_app
from tests.servers import backend_env

ASGIApp = Any


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: ASGIApp, path: str) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(path), receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"GET {path} answered {sent[0]['status']}: {sent}")


async def _cpu_per_request(app: ASGIApp, path: str, requests: int, profile: Path | None) -> float:
    for _ in range(200):  # warm-up: caches, lazily built middleware stack
        await _call(app, path)
    profiler = cProfile.Profile() if profile is not None else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    for _ in range(requests):
        await _call(app, path)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    return (time.process_time() - started) / requests


async def _measure(requests: int, profiles: Path | None) -> None:
    from backend.domain.operations import OperationStatus, transition
    from backend.main import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        ops = app.state.components.operations
        op, _ = ops.create(op_type="training", request={}, execution_mode="local", mode_reason="bench")
        now = datetime.now(UTC)
        running = ops.update(op.id, lambda o: transition(o, OperationStatus.RUNNING, now))
        ops.track(running)  # live, as a running training's operation is while pollers read it
        paths = {
            "trivial": (trivial_app, "/ping"),
            "health": (app, "/health"),
            "operation": (app, f"/api/v1/operations/{op.id}"),
        }
        cpu = {}
        for name, (target, path) in paths.items():
            profile = profiles / f"{name}.prof" if profiles is not None else None
            cpu[name] = await _cpu_per_request(target, path, requests, profile)
    print(f"in-process CPU per request (ASGI, no server), {requests} requests each:")
    for name, seconds in cpu.items():
        print(
            f"  {name:<10} {seconds * 1e6:6.0f} us  (+{(seconds - cpu['trivial']) * 1e6:.0f} us over trivial)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", type=Path, help="write a cProfile of each path into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        env = backend_env(8000, root, root / "data", MODELYARD_LOG_LEVEL="WARNING")  # never served
        os.environ.update({**env, "MODELYARD_GENERATE_SAMPLE_DATA": "false"})
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        asyncio.run(_measure(args.requests, args.profile))


if __name__ == "__main__":
    main()
