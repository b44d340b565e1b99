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


def fabricated_sweep(components: Any, *, trials: int, epochs: int = 50) -> str:
    """A finished sweep of ``trials`` trials written straight to the app's database (no training runs):
    all but three completed with a model and ``epochs`` history rows; one still running, half-way
    through its history; one failed with an error; one refused before it had an operation. Its Optuna
    study holds no trial (its importances are None, computed once). The sweep's id."""
    from backend.adapters.db.operations import SqlOperationRepository
    from backend.adapters.db.sweeps import SqlSweepRepository
    from backend.adapters.optuna_studies import OptunaStudies
    from backend.domain.operations import Operation, OperationError, OperationStatus
    from backend.domain.sweeps import Sweep, SweepStatus, SweepTrial
    from backend.services.sweeps import new_sweep_id
    from shared.contracts.sweeps import StartSweepRequest

    assert trials >= 4, "a completed, a running, a failed and a refused trial"
    request = StartSweepRequest.model_validate(strategy_sweep(n_trials=trials))
    now = components.operations.now()
    sweep_id = new_sweep_id()
    ops, sweeps = SqlOperationRepository(components.db), SqlSweepRepository(components.db)
    studies = OptunaStudies(components.db.url.render_as_string(hide_password=False))
    try:
        studies.create(sweep_id, request)
    finally:
        studies.close()
    sweeps.add(Sweep(sweep_id, SweepStatus.COMPLETED, {"sweep": request.model_dump(mode="json")}, now, now))
    for n in range(trials):
        params = {"overrides.learning_rate": 0.001 * (n + 1), "strategy.labels.threshold": 0.02}
        if n == trials - 1:  # refused: no operation
            sweeps.put_trial(
                SweepTrial(sweep_id, n, n, "", params, "fail", error="its training could not start: x")
            )
            continue
        status, shown = OperationStatus.COMPLETED, epochs
        if n == trials - 2:
            status, shown = OperationStatus.FAILED, epochs // 3
        elif n == trials - 3:
            status, shown = OperationStatus.RUNNING, epochs // 2
        history = tuple(
            {"epoch": e, "loss": 1.0 / (e + n + 1), "val_loss": 1.0 / (e + 1) + 0.01 * n, "accuracy": 0.5}
            for e in range(1, shown + 1)
        )
        done = status is OperationStatus.COMPLETED
        model = {"strategy": "trend_momentum", "name": "sweep", "version": n + 1, "path": f"models/{n + 1}"}
        op = Operation(
            id=f"{sweep_id}-op{n}",
            type="training",
            status=status,
            execution_mode="local",
            mode_reason="",
            request={"strategy": "trend_momentum"},
            created_at=now,
            updated_at=now,
            result={"model": model, "test_metrics": {"loss": 0.5}, "history": list(history)}
            if done
            else None,
            error=OperationError("training_failed", f"trial {n} diverged")
            if status is OperationStatus.FAILED
            else None,
            history=history,
            tags=(sweep_id,),
            owner_id=components.operations.instance_id,
        )
        ops.add(op)
        state = {OperationStatus.COMPLETED: "complete", OperationStatus.FAILED: "fail"}.get(status, "open")
        reported = {e: 1.0 / (e + 1) + 0.01 * n for e in range(1, shown + 1)} if state != "open" else {}
        objective = 1.0 / (epochs + 1) + 0.01 * n if done else None
        sweeps.put_trial(SweepTrial(sweep_id, n, n, op.id, params, state, objective, reported))
    return sweep_id
