"""The serving process keeps what start-up built, the training stack included, out of later garbage
collections (gc.freeze): a full collection of it stalled the event loop for a quarter of a second now
and then during a training."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn

from backend.main import create_app
from backend.server import _Server, listen
from backend.settings import Settings
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from tests.servers import backend_env, free_port


@pytest.mark.anyio
async def test_the_server_freezes_what_its_start_up_built(settings: Settings) -> None:
    port = free_port()
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"), app)
    sock = listen("127.0.0.1", port)
    gc.unfreeze()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                assert not serving.done(), serving
                await asyncio.sleep(0.02)
        assert gc.get_freeze_count() > 0
        components = app.state.components  # built by the lifespan, before the freeze
        assert gc.is_tracked(components)
        assert not any(components is o for o in gc.get_objects(generation=2))  # frozen, not in gen 2
    finally:
        gc.unfreeze()  # the other tests of this process must not inherit it
        server.should_exit = True
        async with asyncio.timeout(30):
            await serving
        sock.close()


# Serves in a fresh interpreter (this one imported the training stack long ago), runs one local training
# to its end through the API, then prints what a full collection has left to walk.
TRAIN_AFTER_START_UP = """
import asyncio, gc, json, sys
import httpx, uvicorn
from backend.main import create_app
from backend.server import _Server, listen
from backend.settings import load_settings

async def main():
    settings = load_settings()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    server = _Server(config, app)
    serving = asyncio.create_task(server.serve(sockets=[listen("127.0.0.1", settings.port)]))
    async with asyncio.timeout(240):
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        before = set(sys.modules)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=30) as client:
            body = {"strategy": "trend_momentum", "symbol": "EURUSD", "timeframe": "1h",
                    "overrides": {"epochs": 2}}
            op_id = (await client.post("/api/v1/trainings", json=body)).json()["operation_id"]
            while (op := (await client.get(f"/api/v1/operations/{op_id}")).json())["status"] in (
                "pending", "running"):
                await asyncio.sleep(0.1)
        gc.collect()
        print(json.dumps({"status": op["status"], "error": op.get("error"),
                          "collected_heap": len(gc.get_objects()),  # frozen ones excluded
                          "imported_by_the_training": sorted(set(sys.modules) - before)}))
        server.should_exit = True
        await serving

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_local_training_after_start_up_leaves_the_collector_little_to_walk(tmp_path: Path) -> None:
    # Before the server loaded the training stack ahead, the first training's imports (sympy through
    # torch._dynamo, numba, llvmlite) left ~200,000 objects that each full collection walked, holding
    # the GIL for 100-300 ms while pollers waited.
    write_sample_data(tmp_path / "data")
    env = backend_env(
        free_port(), tmp_path / "api", tmp_path / "data", MODELYARD_GENERATE_SAMPLE_DATA="false",
        MODELYARD_DEFAULT_EXECUTION_MODE="local", MODELYARD_LOG_LEVEL="WARNING",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_AFTER_START_UP],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "completed", outcome["error"]
    assert outcome["collected_heap"] < 30_000, outcome["collected_heap"]
    imported = outcome["imported_by_the_training"]
    assert not [m for m in imported if m.split(".")[0] in ("sympy", "numba", "llvmlite", "mpmath")]
    assert not [m for m in imported if m.startswith(("torch._dynamo", "shared.trainkit.workloads"))]
