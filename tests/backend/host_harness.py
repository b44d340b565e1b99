"""A backend run in-process in host mode, against a FakeHostClient, with short timings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from backend.adapters.storage import LocalModelStore
from backend.components import Adapters, Components
from backend.main import create_app
from backend.settings import Settings
from shared.contracts.signing import sign, sign_request
from tests.backend.fakes import FakeDatasets, FakeEngine, FakeStrategies, FixedClock
from tests.backend.host_fakes import FakeHostClient

SECRET = "test-secret"
CALLBACK = "/api/v1/callbacks/host-result"
CSV = "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00,1,2,0.5,1.5,100\n"


def host_settings(tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'var' / 'modelyard.db'}",
        "models_dir": tmp_path / "models",
        "data_dir": tmp_path / "data",
        "strategies_dir": tmp_path / "strategies",
        "runs_dir": tmp_path / "runs",
        "progress_write_interval_s": 0.0,
        "generate_sample_data": False,
        "default_execution_mode": "local",
        "hosts": ("http://h1",),
        "shared_secret": SECRET,
        "public_url": "http://testserver",
        "host_health_interval_s": 0.05,
        "host_lease_s": 0.6,
        "host_poll_initial_s": 0.02,
        "host_poll_max_s": 0.05,
        "host_result_pull_delay_s": 30.0,
        "cancel_grace_s": 30.0,
        "max_retries": 0,  # a lost host fails the training unless a test asks for re-dispatches
        "callback_max_bytes": 256 * 1024,
        "inline_model_max_bytes": 128 * 1024,
        "shutdown_timeout_s": 5.0,
    }
    values.update(changes)
    return Settings(**values)


@dataclass
class HostBackend:
    client: httpx.AsyncClient
    hosts: FakeHostClient
    components: Components
    engine: FakeEngine
    store: LocalModelStore
    app: FastAPI

    async def start_training(self, **changes: Any) -> str:
        body: dict[str, Any] = {
            "strategy": "trend",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "execution_mode": "host",
            "overrides": {"epochs": 2},
        }
        body.update(changes)
        response = await self.client.post("/api/v1/trainings", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["operation_id"])

    async def operation(self, op_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/operations/{op_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for(
        self, op_id: str, check: Callable[[dict[str, Any]], bool], what: str, deadline_s: float = 10.0
    ) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        body: dict[str, Any] = {}
        while time.monotonic() < end:
            body = await self.operation(op_id)
            if check(body):
                return body
            await asyncio.sleep(0.01)
        raise AssertionError(f"operation {op_id} never got {what}; last seen: {body}")

    async def wait_status(self, op_id: str, *statuses: str, deadline_s: float = 10.0) -> dict[str, Any]:
        return await self.wait_for(op_id, lambda b: b["status"] in statuses, f"status {statuses}", deadline_s)

    async def post_result(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        signed = sign(SECRET, body) if headers is None else headers
        return await self.client.post(
            CALLBACK, content=body, headers={"content-type": "application/json", **signed}
        )

    async def signed_get(self, path: str) -> httpx.Response:
        """GET ``path`` as a host does: signed over the method and the path with its query."""
        return await self.client.get(path, headers=sign_request(SECRET, "GET", path))

    def versions(self) -> list[int]:
        try:
            return [v["version"] for v in self.store.list_versions("trend", "EURUSD_1h")]
        except Exception:
            return []


@asynccontextmanager
async def host_backend(
    settings: Settings,
    hosts: FakeHostClient | None = None,
    *,
    host_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[HostBackend]:
    """``host_transport`` puts the real HttpHostClient over it (e.g. a MockTransport host) instead of
    ``hosts``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "EURUSD_1h.csv").write_text(CSV)
    hosts = hosts or FakeHostClient()
    engine = FakeEngine()
    store = LocalModelStore.at(settings.models_dir)
    adapters = Adapters(
        engine=engine,
        strategies=FakeStrategies(),
        datasets=FakeDatasets(settings.data_dir),
        models=store,
        clock=FixedClock(),
        host_client=None if host_transport else hosts,
        host_transport=host_transport,
    )
    app = create_app(settings, adapters)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield HostBackend(client, hosts, app.state.components, engine, store, app)
    finally:
        await lifespan.__aexit__(None, None, None)
