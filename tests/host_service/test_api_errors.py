"""Every error the host answers has the shared body ``{"error": {"code", "message", "details"}}``,
framework errors included (a malformed body, an unknown route, a wrong method, a too large body)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.contracts.api import ErrorBody
from tests.host_service.conftest import FakeBackend, Host, host_settings, run_host, start_body
from tests.host_service.fakes import FakeLauncher

pytestmark = pytest.mark.anyio


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "detail" not in body
    ErrorBody.model_validate(body)
    error: dict[str, Any] = body["error"]
    return error


async def test_a_bad_field_is_a_422_naming_its_path(host: Host) -> None:
    body = start_body()
    body["request"]["overrides"]["epochs"] = "many"
    response = await host.client.post("/training/start", json=body)
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == "body.request.overrides.epochs"
    assert error["message"].startswith("body.request.overrides.epochs: ")


async def test_a_missing_field_is_listed_with_every_other_bad_field(host: Host) -> None:
    body = start_body()
    del body["operation_id"]
    body["datasets"][0]["sha256"] = 5
    response = await host.client.post("/training/start", json=body)
    error = _error(response)
    fields = {entry["field"] for entry in error["details"]["errors"]}
    assert {"body.operation_id", "body.datasets.0.sha256"} <= fields
    assert "(and 1 more)" in error["message"]


async def test_a_body_that_is_not_json_is_a_422_malformed_json(host: Host) -> None:
    response = await host.client.post(
        "/training/start", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert _error(response)["code"] == "malformed_json"


async def test_an_unknown_route_is_a_404_in_the_shared_shape(host: Host) -> None:
    response = await host.client.get("/training/nowhere/at/all")
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "not_found"
    assert "GET /training/nowhere/at/all" in error["message"]


async def test_a_wrong_method_is_a_405_in_the_shared_shape(host: Host) -> None:
    response = await host.client.delete("/training/start")
    assert response.status_code == 405
    error = _error(response)
    assert error["code"] == "method_not_allowed"
    assert "DELETE" in error["message"]


async def test_a_too_large_body_is_a_413_in_the_shared_shape(tmp_path: Path) -> None:
    async for host in run_host(
        host_settings(tmp_path, max_request_bytes=2048), FakeLauncher(), FakeBackend()
    ):
        body = start_body()
        body["request"]["strategy_yaml"] = "x" * 5000
        response = await host.client.post("/training/start", json=body)
        assert response.status_code == 413
        assert _error(response)["code"] == "payload_too_large"
