"""What the sweep tests share: sample data and settings for real in-process trainings, an app run with
its lifespan, a small strategy sweep, and waiting for a sweep with a deadline."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from backend.components import Adapters
from backend.main import create_app
from backend.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 600.0


def sample_candles(folder: Path) -> Path:
    from shared.trainkit.workloads.strategy.sample_data import write_sample_data

    write_sample_data(folder, symbols=("EURUSD",), timeframes=("1h",), rows=1200, seed=3)
    return folder


def sweep_settings(root: Path, candles: Path, **changes: Any) -> Settings:
    """A backend in ``root`` on SQLite; events drive its sweeps (the safety-net pass never comes)."""
    from shared.trainkit.workloads.command.catalog import write_sample_commands

    shutil.copytree(candles, root / "data", dirs_exist_ok=True)
    shutil.copytree(REPO / "strategies", root / "strategies", dirs_exist_ok=True)
    write_sample_commands(root / "commands")
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root / 'var' / 'modelyard.db'}",
        "models_dir": root / "models",
        "data_dir": root / "data",
        "strategies_dir": root / "strategies",
        "commands_dir": root / "commands",
        "runs_dir": root / "runs",
        "progress_write_interval_s": 0.0,
        "generate_sample_data": False,
        "default_execution_mode": "local",
        "local_concurrency": 2,
        "sweep_poll_interval_s": 300.0,
        "shutdown_timeout_s": 30.0,
    }
    return Settings(**{**values, **changes})


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: FastAPI | None = None
        self.lifespan: Any = None
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> httpx.AsyncClient:
        self.app = create_app(self.settings, Adapters())
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")
        return self.client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.lifespan is not None:
            await self.lifespan.__aexit__(None, None, None)
        self.client = self.lifespan = None

    @property
    def components(self) -> Any:
        assert self.app is not None
        return self.app.state.components


def strategy_sweep(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "base": {
            "strategy": "trend_momentum",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "overrides": {"epochs": 2, "batch_size": 256},
        },
        "space": {
            "overrides.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "strategy.labels.threshold": {"type": "float", "low": 0.01, "high": 0.03},
        },
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "n_trials": 6,
        "parallelism": 2,
        "pruner": "none",
    }
    body.update(changes)
    return body


async def wait_sweep(
    client: httpx.AsyncClient, sweep_id: str, done: Any, deadline_s: float = DEADLINE_S
) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    body: dict[str, Any] = {}
    while time.monotonic() < end:
        body = (await client.get(f"/api/v1/sweeps/{sweep_id}")).json()
        if done(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"sweep {sweep_id} never got there; last seen: {body}")


def finished(body: dict[str, Any]) -> bool:
    return body.get("status") in ("completed", "failed", "cancelled")
