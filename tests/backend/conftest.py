"""Fixtures: settings in a temp folder, fakes of every port, an app run in-process with its lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.components import Adapters
from backend.main import create_app
from backend.settings import Settings
from tests.backend.fakes import FakeDatasets, FakeEngine, FakeModelStore, FakeStrategies, FixedClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample EURUSD 1h candles for real in-process trainings (the sweep tests)."""
    from tests.backend.sweep_harness import sample_candles

    return sample_candles(tmp_path_factory.mktemp("candles"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'var' / 'modelyard.db'}",
        models_dir=tmp_path / "models",
        data_dir=tmp_path / "data",
        strategies_dir=tmp_path / "strategies",
        runs_dir=tmp_path / "runs",
        progress_write_interval_s=0.0,
        generate_sample_data=False,
        sse_heartbeat_s=0.2,
        shutdown_timeout_s=5.0,
        default_execution_mode="local",
        max_upload_bytes=1024 * 1024,
    )


@dataclass
class Fakes:
    engine: FakeEngine
    strategies: FakeStrategies
    datasets: FakeDatasets
    models: FakeModelStore
    clock: FixedClock

    def adapters(self) -> Adapters:
        return Adapters(
            engine=self.engine,
            strategies=self.strategies,
            datasets=self.datasets,
            models=self.models,
            clock=self.clock,
        )


@pytest.fixture
def fakes(settings: Settings) -> Fakes:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Fakes(
        FakeEngine(), FakeStrategies(), FakeDatasets(settings.data_dir), FakeModelStore(), FixedClock()
    )


class Running:
    """An app with its lifespan entered, and a client talking to it in-process."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client


async def start_app(settings: Settings, fakes: Fakes) -> tuple[FastAPI, Any]:
    app = create_app(settings, fakes.adapters())
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    return app, lifespan


@pytest.fixture
async def api(settings: Settings, fakes: Fakes) -> AsyncIterator[httpx.AsyncClient]:
    app, lifespan = await start_app(settings, fakes)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        if fakes.engine.gate is not None:
            fakes.engine.gate.set()
        await lifespan.__aexit__(None, None, None)


async def wait_for_status(
    client: httpx.AsyncClient,
    op_id: str,
    statuses: Iterable[str],
    deadline_s: float = 10.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    wanted = set(statuses)
    end = time.monotonic() + deadline_s
    body: dict[str, Any] = {}
    while time.monotonic() < end:
        response = await client.get(f"/api/v1/operations/{op_id}", headers=headers)
        body = response.json()
        if body.get("status") in wanted:
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"operation {op_id} never reached {wanted}; last seen: {body}")


def training_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy": "trend",
        "symbol": "EURUSD",
        "timeframe": "1h",
        "overrides": {"epochs": 3},
    }
    body.update(changes)
    return body
