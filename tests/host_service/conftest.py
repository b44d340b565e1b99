"""A host app run in-process with fakes: a fake launcher, a MockTransport backend, a no-wait retry policy."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from host_service.adapters.backend_client import CallbackRetryPolicy
from host_service.adapters.result_files import ResultFolderSink, write_result
from host_service.domain.ports import NewId
from host_service.main import create_app, new_session_id
from host_service.settings import HostSettings
from shared.trainkit.executor.types import ModelArtifact
from tests.host_service.fakes import FakeLauncher, SigningAuth

SECRET = "test-shared-secret"
CSV = b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
CSV_SHA = hashlib.sha256(CSV).hexdigest()
DATA_URL = "http://backend.test/api/v1/data/EURUSD/1h/download"
CALLBACK_URL = "http://backend.test/api/v1/callbacks/host-result"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def no_sleep(seconds: float) -> None:
    return None


@dataclass
class FakeBackend:
    """The backend as a MockTransport handler: serves one CSV, records callbacks, answers ``status``."""

    callbacks: list[httpx.Request] = field(default_factory=list)
    downloads: list[httpx.Request] = field(default_factory=list)
    callback_status: int = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url == httpx.URL(DATA_URL):
            self.downloads.append(request)
            return httpx.Response(200, content=CSV)
        if request.url == httpx.URL(CALLBACK_URL):
            self.callbacks.append(request)
            return httpx.Response(self.callback_status)
        return httpx.Response(404)


@dataclass
class Host:
    client: httpx.AsyncClient
    launcher: FakeLauncher
    backend: FakeBackend
    settings: HostSettings


def host_settings(tmp_path: Path, **overrides: Any) -> HostSettings:
    fields: dict[str, Any] = {
        "work_dir": tmp_path / "host",
        "capacity": 1,
        "shared_secret": SECRET,
        "stop_grace_s": 0.2,
        "poll_interval_s": 0.01,
        "progress_persist_interval_s": 0.05,
        "retry_after_s": 3,
    }
    fields.update(overrides)
    return HostSettings(**fields)


async def run_host(
    settings: HostSettings,
    launcher: FakeLauncher,
    backend: FakeBackend,
    *,
    new_id: NewId = new_session_id,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[Host]:
    """The app with its lifespan run; ``raise_app_exceptions=False`` answers a server error as a 500."""
    app = create_app(
        settings,
        launcher=launcher,
        backend_transport=httpx.MockTransport(backend),
        retry_policy=CallbackRetryPolicy(attempts=2, sleep=no_sleep),
        device={"kind": "cpu", "name": "test-cpu", "memory_bytes": 1},
        new_id=new_id,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://host.test", auth=SigningAuth(SECRET), timeout=10
        ) as client:
            yield Host(client, launcher, backend, settings)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    async for running in run_host(host_settings(tmp_path), FakeLauncher(), FakeBackend()):
        yield running


def start_body(operation_id: str = "op_1", epochs: int = 2) -> dict[str, Any]:
    return {
        "operation_id": operation_id,
        "callback_url": CALLBACK_URL,
        "datasets": [{"filename": "EURUSD_1h.csv", "sha256": CSV_SHA, "url": DATA_URL}],
        "request": {
            "strategy_name": "trend_momentum",
            "strategy_yaml": "name: trend_momentum\n",
            "symbols": ["EURUSD"],
            "timeframes": ["1h"],
            "overrides": {"epochs": epochs},
        },
    }


def write_fake_result(model_bytes: bytes = b"MYCKPT fake weights" * 100) -> Callable[[Path], None]:
    def write(result_dir: Path) -> None:
        artifact = ModelArtifact(
            strategy="trend_momentum",
            name="EURUSD_1h",
            model_bytes=model_bytes,
            config={"epochs": 2},
            metrics={"accuracy": 0.5},
            features={"names": ["rsi_14"]},
            metadata={"device": "cpu"},
        )
        ref = ResultFolderSink(result_dir).save(artifact)
        write_result(result_dir, {"model": ref.as_dict(), "device": "cpu", "epochs_trained": 2})

    return write


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def status_of(host: Host, session_id: str) -> dict[str, Any]:
    response = await host.client.get(f"/training/status/{session_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_status(host: Host, session_id: str, *statuses: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        view = await status_of(host, session_id)
        if view["status"] in statuses:
            return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"session {session_id} is {view['status']}, not {statuses}: {json.dumps(view)}"
            )
        await asyncio.sleep(0.01)
