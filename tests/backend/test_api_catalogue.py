"""Models, strategies, data, system, health and Prometheus metrics, in-process against fakes."""

from __future__ import annotations

import hashlib
import io
import zipfile

import httpx
import pytest

from tests.backend.conftest import Fakes, training_body, wait_for_status

pytestmark = pytest.mark.anyio

CSV = b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00,1,2,0.5,1.5,100\n2024-01-01T01:00:00,1,2,0.5,1.5,90\n"


async def test_models_list_versions_download_and_delete(api: httpx.AsyncClient, fakes: Fakes) -> None:
    assert (await api.get("/api/v1/models")).json() == [
        {
            "strategy": "trend",
            "name": "EURUSD_1h",
            "latest_version": 1,
            "versions": 1,
            "updated_at": None,
            "aliases": {},
        }
    ]
    detail = (await api.get("/api/v1/models/trend/EURUSD_1h")).json()
    assert detail["versions"][0]["version"] == 1
    assert detail["versions"][0]["metrics"] == {"accuracy": 0.5}
    download = await api.get("/api/v1/models/trend/EURUSD_1h/versions/1/download")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(download.content)).namelist()) == ["metrics.json", "model.pt"]
    assert (await api.delete("/api/v1/models/trend/EURUSD_1h/versions/1")).status_code == 204
    gone = await api.get("/api/v1/models/trend/EURUSD_1h/versions/1/download")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "model_not_found"


async def test_onnx_export_answers_octet_stream_and_422_saying_why(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    exported = await api.get("/api/v1/models/trend/EURUSD_1h/versions/1/onnx")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/octet-stream"
    assert exported.headers["content-disposition"] == 'attachment; filename="trend-EURUSD_1h_v1.onnx"'
    assert exported.content == b"onnx:weights"
    fakes.models.versions[("toy", "run_1")] = {1: {"files/out.bin": b"x"}}
    refused = await api.get("/api/v1/models/toy/run_1/versions/1/onnx")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "model_not_exportable"
    assert refused.json()["error"]["details"]["reason"] == "command_model"
    missing = await api.get("/api/v1/models/trend/EURUSD_1h/versions/2/onnx")
    assert missing.status_code == 404
    assert (await api.get("/api/v1/models/trend/EURUSD_1h/versions/0/onnx")).status_code == 422


async def test_model_paths_reject_traversal_and_bad_versions(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/models/trend/EURUSD_1h/versions/0/download")).status_code == 422
    assert (await api.get("/api/v1/models/trend/..%2Fetc")).status_code in (404, 422)


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/api/v1/models/trend/../../../etc/passwd",
        b"/api/v1/models/trend/EURUSD_1h/versions/1/../../../../../etc/passwd/download",
        b"/api/v1/models/%2e%2e/%2e%2e/etc",
    ],
)
async def test_raw_traversal_paths_never_reach_a_file(api: httpx.AsyncClient, raw_path: bytes) -> None:
    """Sent byte for byte: an HTTP client would otherwise resolve the dot segments before sending."""
    request = api.build_request("GET", "/")
    request.url = request.url.copy_with(raw_path=raw_path)
    response = await api.send(request)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["code"]
    assert "root:" not in response.text
    assert (await api.delete("/api/v1/models/trend/nothing/versions/3")).status_code == 404


async def test_strategies_list_and_validate(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/api/v1/strategies")).json()
    assert [s["name"] for s in listed] == ["trend"]
    ok = (await api.post("/api/v1/strategies/validate", json={"strategy_yaml": "name: x\n"})).json()
    assert ok == {"valid": True, "name": "x", "error": None, "summary": {"name": "x"}}
    bad = (await api.post("/api/v1/strategies/validate", json={"strategy_yaml": "[1, 2]"})).json()
    assert bad["valid"] is False
    assert bad["error"]["code"] == "invalid_config"


async def test_data_upload_list_and_download_with_sha256(api: httpx.AsyncClient) -> None:
    files = {"file": ("candles.csv", CSV, "text/csv")}
    uploaded = await api.post("/api/v1/data", files=files, data={"symbol": "ETHUSD", "timeframe": "4h"})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["rows"] == 2
    listed = (await api.get("/api/v1/data")).json()["items"]
    assert {(d["symbol"], d["timeframe"]) for d in listed} == {("ETHUSD", "4h")}
    download = await api.get("/api/v1/data/ETHUSD/4h/download")
    assert download.content == CSV
    assert download.headers["x-content-sha256"] == hashlib.sha256(CSV).hexdigest()


async def test_data_upload_that_fails_validation_is_a_422_and_stores_nothing(api: httpx.AsyncClient) -> None:
    files = {"file": ("candles.csv", b"a,b\n1,2\n", "text/csv")}
    response = await api.post("/api/v1/data", files=files, data={"symbol": "ETHUSD", "timeframe": "4h"})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"row": 1}
    assert (await api.get("/api/v1/data")).json()["items"] == []


async def test_data_upload_needs_file_symbol_and_a_safe_name(api: httpx.AsyncClient) -> None:
    missing = await api.post("/api/v1/data", data={"symbol": "ETHUSD", "timeframe": "4h"})
    assert missing.status_code == 422
    assert missing.json()["error"]["details"]["field"] == "body.file"
    files = {"file": ("c.csv", CSV, "text/csv")}
    unsafe = await api.post("/api/v1/data", files=files, data={"symbol": "../x", "timeframe": "4h"})
    assert unsafe.json()["error"]["details"]["field"] == "symbol"


async def test_download_of_missing_dataset_is_a_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/data/NOPE/1h/download")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "data_not_found"


async def test_sample_data_is_regenerated_on_request(api: httpx.AsyncClient, fakes: Fakes) -> None:
    response = await api.post("/api/v1/data/sample")
    assert response.status_code == 200
    assert fakes.datasets.samples_written == 1
    assert [d["symbol"] for d in response.json()["items"]] == ["EURUSD"]


async def test_health_and_system_report_state_and_queue(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok", "database": "ok"}
    system = (await api.get("/api/v1/system")).json()
    assert system["device"] == "cpu"
    assert system["default_execution_mode"] == "local"
    assert {m["mode"]: m["available"] for m in system["execution_modes"]} == {
        "local": True,
        "host": False,
        "ray": False,  # no MODELYARD_RAY_ADDRESS
        "auto": True,
    }
    assert system["ray"] is None
    assert system["queue_depth"] == 0
    assert system["database"].startswith("sqlite:///")


async def test_prometheus_metrics_count_operations_and_requests(api: httpx.AsyncClient) -> None:
    op_id = (await api.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
    await wait_for_status(api, op_id, {"completed"})
    text = (await api.get("/metrics")).text
    assert 'modelyard_operations{status="completed"} 1.0' in text
    assert "modelyard_queue_depth 0.0" in text
    assert 'modelyard_operation_duration_seconds_count{status="completed",type="training"} 1.0' in text
    assert 'route="/api/v1/operations/{operation_id}"' in text


async def test_openapi_has_an_example_for_every_request_body(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if not body:
                continue
            for media in body["content"].values():
                ref = media["schema"].get("$ref", "")
                target = components[ref.rsplit("/", 1)[-1]] if ref else media["schema"]
                has_example = "examples" in target or "example" in media or "examples" in media
                assert has_example, f"{method.upper()} {path} has no request example"
