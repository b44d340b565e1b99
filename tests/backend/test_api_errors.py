"""Every bad input answers with {"error": {"code", "message", "details"}} and the right status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.settings import Settings
from shared.trainkit.errors import DataNotFoundError
from tests.backend.conftest import Fakes, training_body

pytestmark = pytest.mark.anyio


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert "Traceback" not in response.text
    return dict(body["error"])


async def test_malformed_json_is_a_422_with_the_error_body(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/trainings", content=b'{"strategy": "trend",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response)["code"] == "malformed_json"


async def test_wrong_type_names_the_field_path(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(overrides={"epochs": "many"}))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == "body.overrides.epochs"
    assert error["message"].startswith("body.overrides.epochs:")


async def test_out_of_range_override_names_the_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(overrides={"learning_rate": 0}))
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "body.overrides.learning_rate"


async def test_unknown_field_is_rejected(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(epochz=3))
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "body.epochz"


async def test_unknown_strategy_is_a_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(strategy="nope"))
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "strategy_not_found"
    assert error["details"]["field"] == "strategy"


async def test_missing_data_is_a_404_naming_symbol_and_timeframe(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(symbol="XYZ"))
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "data_not_found"
    assert error["details"] == {"symbol": "XYZ", "timeframe": "1h"}


async def test_start_after_end_date_is_a_422_naming_end_date(api: httpx.AsyncClient) -> None:
    body = training_body(start_date="2024-05-01", end_date="2024-01-01")
    response = await api.post("/api/v1/trainings", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "end_date"


async def test_unparseable_date_names_the_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(start_date="yesterday"))
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "body.start_date"


async def test_symbol_that_could_escape_the_data_folder_is_rejected(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(symbol="../etc/passwd"))
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "symbol"


async def test_both_strategy_and_inline_yaml_is_rejected(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(strategy_yaml="name: x\n"))
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "strategy"


async def test_invalid_inline_strategy_is_a_422_from_the_strategy_parser(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/trainings", json=training_body(strategy=None, strategy_yaml="- a list\n")
    )
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_config"


async def test_tabular_workload_without_its_spec_names_the_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json={"workload": "tabular"})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"


async def test_require_gpu_without_any_gpu_is_a_503(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/trainings", json=training_body(require_gpu=True, execution_mode="auto")
    )
    assert response.status_code == 503
    assert error_of(response)["code"] == "execution_mode_unavailable"


async def test_unknown_operation_id_is_a_404(api: httpx.AsyncClient) -> None:
    for path in ("", "/metrics", "/logs", "/events"):
        response = await api.get(f"/api/v1/operations/op_doesnotexist{path}")
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "operation_not_found"
    response = await api.post("/api/v1/operations/op_doesnotexist/cancel")
    assert response.status_code == 404


async def test_unknown_route_and_wrong_method_use_the_error_body(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    wrong = await api.put("/api/v1/trainings", json={})
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"


async def test_body_over_the_limit_is_a_413_before_it_is_read(api: httpx.AsyncClient) -> None:
    big = b"x" * (1024 * 1024 + 1)
    response = await api.post("/api/v1/data", content=big, headers={"content-type": "text/csv"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


async def test_bad_query_parameter_names_it(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/operations", params={"limit": 0})
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "query.limit"
    response = await api.get("/api/v1/operations", params={"status": "sleeping"})
    assert error_of(response)["details"]["field"] == "query.status.0"


async def test_a_chunked_body_over_the_limit_is_a_413_while_it_streams(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"strategy": "'
        for _ in range(64):  # 4 MiB, four times the limit, with no Content-Length
            yield b"x" * 65536

    response = await api.post(
        "/api/v1/trainings", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


async def test_a_chunked_upload_over_the_limit_is_a_413(api: httpx.AsyncClient) -> None:
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for _ in range(40):
            yield b"1,2,3,4,5,6\n" * 5000

    response = await api.post(
        "/api/v1/data",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


async def test_error_details_are_json_values_not_python_reprs(api: httpx.AsyncClient, fakes: Fakes) -> None:
    def missing(_request: object) -> list[str]:
        raise DataNotFoundError("no candle data for AAPL 1h", available=["AAPL_1d"], rows=(1, 2))

    fakes.engine.validate = missing  # type: ignore[method-assign,assignment]
    response = await api.post("/api/v1/trainings", json=training_body())
    assert response.status_code == 404
    assert error_of(response)["details"] == {"available": ["AAPL_1d"], "rows": [1, 2]}


async def test_server_folders_never_appear_as_absolute_paths_in_errors(
    api: httpx.AsyncClient, fakes: Fakes, settings: Settings
) -> None:
    data = settings.data_dir.resolve()

    def missing(_request: object) -> list[str]:
        raise DataNotFoundError(
            f"no candle data: {data}/AAPL_1h.csv does not exist", path=data / "AAPL_1h.csv"
        )

    fakes.engine.validate = missing  # type: ignore[method-assign,assignment]
    response = await api.post("/api/v1/trainings", json=training_body())
    error = error_of(response)
    assert error["message"] == "no candle data: data/AAPL_1h.csv does not exist"
    assert error["details"] == {"path": "data/AAPL_1h.csv"}
    assert str(settings.data_dir.parent) not in response.text


async def test_a_huge_operation_id_is_not_echoed_back_whole(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/operations/" + "x" * 5000)
    assert response.status_code == 404
    assert len(response.text) < 500
    assert error_of(response)["details"]["operation_id"].endswith("…")


async def test_a_nan_learning_rate_is_called_what_it_is(api: httpx.AsyncClient) -> None:
    body = (
        b'{"strategy": "trend", "symbol": "EURUSD", "timeframe": "1h", "overrides": {"learning_rate": NaN}}'
    )
    response = await api.post("/api/v1/trainings", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert error_of(response)["message"] == "body.overrides.learning_rate: must be a finite number"
