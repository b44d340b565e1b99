"""The polled reads answered before routing (``backend.api.polled_reads``) answer what the routes would,
behind the same token check, counted in the same latency histogram; what they cannot answer from memory
goes to the routes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from backend.api.views import operation_view
from backend.components import Components
from backend.domain.tokens import TokenScope
from backend.services.health import DatabaseHealth
from backend.settings import Settings
from tests.backend.conftest import Fakes, Running, start_app, training_body, wait_for_status

pytestmark = pytest.mark.anyio


@pytest.fixture
async def running(settings: Settings, fakes: Fakes) -> AsyncIterator[Running]:
    app, lifespan = await start_app(settings, fakes)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield Running(app, client)
    finally:
        if fakes.engine.gate is not None:
            fakes.engine.gate.set()
        await lifespan.__aexit__(None, None, None)


def _components(running: Running) -> Components:
    components: Components = running.app.state.components
    return components


async def _start(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    response = await client.post("/api/v1/trainings", json=training_body(), headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


async def test_a_running_and_a_finished_operation_read_as_their_view(running: Running, fakes: Fakes) -> None:
    fakes.engine.gate = threading.Event()
    op_id = await _start(running.client)
    assert await asyncio.to_thread(fakes.engine.started.wait, 10)
    operations = _components(running).operations
    for _ in range(2):  # running (live in memory), then completed (kept finished in memory)
        assert operations.get_cached(op_id) is not None
        response = await running.client.get(f"/api/v1/operations/{op_id}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)
        assert response.json() == json.loads(operation_view(operations.get(op_id)).model_dump_json())
        fakes.engine.gate.set()
        await wait_for_status(running.client, op_id, {"completed"})


async def test_an_operation_not_in_memory_is_read_by_the_route(running: Running) -> None:
    response = await running.client.get("/api/v1/operations/op_unknown")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "operation_not_found"


async def test_a_polled_operation_needs_a_read_token_when_tokens_are_required(running: Running) -> None:
    tokens = _components(running).tokens
    admin = {"Authorization": f"Bearer {tokens.create('admin-ops', TokenScope.ADMIN)[1]}"}
    op_id = await _start(running.client, admin)
    await wait_for_status(running.client, op_id, {"completed"}, headers=admin)
    assert _components(running).operations.get_cached(op_id) is not None
    refused = await running.client.get(f"/api/v1/operations/{op_id}")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    read = {"Authorization": f"Bearer {tokens.create('read-bot', TokenScope.READ)[1]}"}
    assert (await running.client.get(f"/api/v1/operations/{op_id}", headers=read)).status_code == 200
    assert (await running.client.get("/health")).status_code == 200  # public


async def test_polled_reads_are_timed_under_their_route_templates(running: Running) -> None:
    op_id = await _start(running.client)
    await wait_for_status(running.client, op_id, {"completed"})
    paths = {"/health": "/health", f"/api/v1/operations/{op_id}": "/api/v1/operations/{operation_id}"}
    for path in paths:
        assert (await running.client.get(path)).status_code == 200  # the health check is now fresh
    before = await _request_counts(running.client, paths.values())
    for path in paths:
        for _ in range(3):
            assert (await running.client.get(path)).status_code == 200
    after = await _request_counts(running.client, paths.values())
    assert {t: after[t] - before[t] for t in after} == dict.fromkeys(paths.values(), 3.0)


async def _request_counts(client: httpx.AsyncClient, templates: Iterable[str]) -> dict[str, float]:
    metrics = (await client.get("/metrics")).text
    series = 'modelyard_http_request_duration_seconds_count{{method="GET",route="{}",status="200"}} '
    counts = {}
    for template in templates:
        line = next(line for line in metrics.splitlines() if line.startswith(series.format(template)))
        counts[template] = float(line.rsplit(" ", 1)[1])
    return counts


async def test_health_checks_the_database_when_due_and_answers_503_when_it_fails(running: Running) -> None:
    calls: list[bool] = []
    failing = threading.Event()

    def ping() -> None:
        calls.append(True)
        if failing.is_set():
            raise ConnectionError("database gone")

    _components(running).health = DatabaseHealth(ping, max_age_s=3600.0)
    assert (await running.client.get("/health")).json() == {"status": "ok", "database": "ok"}
    assert (await running.client.get("/health")).status_code == 200
    assert len(calls) == 1  # the second answer came from the fresh check
    failing.set()
    _components(running).health = DatabaseHealth(ping, max_age_s=3600.0)
    response = await running.client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert (await running.client.get("/health")).status_code == 503  # a fresh failure is not healthy
