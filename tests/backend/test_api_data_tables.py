"""Tables through the API over the real data folder and engine: upload CSV or Parquet next to candles,
list both kinds, preview columns, and every bad input a 4xx naming the field and the fix."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from backend.components import Adapters
from backend.main import create_app
from backend.settings import Settings
from tests.backend.conftest import Fakes

pytestmark = pytest.mark.anyio

CANDLES = b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00,1,2,0.5,1.5,100\n2024-01-01T01:00:00,1,2,0.5,1.5,90\n"
CHURN = b"age,city,spend,churned\n31,Oslo,10.5,no\n45,Rome,,yes\n22,,1.0,yes\n60,Lima,12.75,no\n"


@pytest.fixture
async def api(settings: Settings, fakes: Fakes) -> AsyncIterator[httpx.AsyncClient]:
    """The real DataFolder and the real engine (its preflight reads the table)."""
    settings.strategies_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, Adapters(clock=fakes.clock))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await lifespan.__aexit__(None, None, None)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


async def upload(api: httpx.AsyncClient, filename: str, content: bytes, **form: str) -> httpx.Response:
    return await api.post("/api/v1/data", files={"file": (filename, content)}, data=form)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


async def test_a_csv_table_uploads_next_to_candles_and_both_are_listed_with_their_kind(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    candles = await upload(api, "c.csv", CANDLES, symbol="ETHUSD", timeframe="4h")
    assert candles.status_code == 201, candles.text
    table = await upload(api, "churn.csv", CHURN)
    assert table.status_code == 201, table.text
    body = table.json()
    assert body["kind"] == "table"
    assert (body["format"], body["rows"], body["columns"], body["path"]) == ("csv", 4, 4, "churn.csv")
    assert body["sha256"] == hashlib.sha256(CHURN).hexdigest()
    assert body["symbol"] is None
    assert (settings.data_dir / "churn.csv").read_bytes() == CHURN
    listed = (await api.get("/api/v1/data")).json()["items"]
    assert [(d["kind"], d["path"]) for d in listed] == [("candles", "ETHUSD_4h.csv"), ("table", "churn.csv")]
    assert listed[1] == body


async def test_a_parquet_table_uploads_and_its_preview_shows_columns_dtypes_rows_and_missing(
    api: httpx.AsyncClient,
) -> None:
    frame = pd.read_csv(io.BytesIO(CHURN))
    stored = await upload(api, "upload.bin", parquet_bytes(frame), kind="table", name="churn.parquet")
    assert stored.status_code == 201, stored.text
    assert (stored.json()["format"], stored.json()["rows"]) == ("parquet", 4)
    preview = await api.get("/api/v1/data/churn.parquet/preview")
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["kind"], body["format"], body["rows"]) == ("table", "parquet", 4)
    assert body["columns"] == [
        {"name": "age", "dtype": "int64", "missing": 0},
        {"name": "city", "dtype": "string", "missing": 1},
        {"name": "spend", "dtype": "float64", "missing": 1},
        {"name": "churned", "dtype": "string", "missing": 0},
    ]
    assert body["sample_rows"][1] == [45, "Rome", None, "yes"]


async def test_a_candle_file_has_a_preview_too(api: httpx.AsyncClient) -> None:
    await upload(api, "c.csv", CANDLES, symbol="ETHUSD", timeframe="4h")
    body = (await api.get("/api/v1/data/ETHUSD_4h.csv/preview")).json()
    assert body["kind"] == "candles"
    assert [c["name"] for c in body["columns"]] == ["timestamp", "open", "high", "low", "close", "volume"]
    assert body["rows"] == 2


async def test_the_preview_of_a_missing_file_is_a_404_naming_it(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/data/nope.csv/preview")
    assert response.status_code == 404
    assert "nope.csv" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("filename", "content", "field", "words"),
    [
        ("t.csv", b"1.5,2,3\n4,5,6\n", "file", "has no header"),
        ("t.csv", b"a,b,a\n1,2,3\n", "file", "'a' appears 2 times in the header; rename the copies"),
        ("t.csv", b"a,b,c\n1,,3\n4,,6\n", "file", "column 'b' has no value on any of its 2 rows"),
        ("t.parquet", b"a,b\n1,2\n", "file", "is not a Parquet file"),
        ("t.txt", b"a,b\n1,2\n", "name", "must end in .csv or .parquet"),
        ("..csv", b"a,b\n1,2\n", "name", "is not valid"),
    ],
)
async def test_a_bad_table_upload_is_a_422_naming_the_field_and_stores_nothing(
    api: httpx.AsyncClient, settings: Settings, filename: str, content: bytes, field: str, words: str
) -> None:
    response = await upload(api, "upload", content, kind="table", name=filename)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["details"]["field"] == field
    assert words in error["message"]
    assert list(settings.data_dir.iterdir()) == []


async def test_a_candle_upload_needs_symbol_and_timeframe(api: httpx.AsyncClient) -> None:
    response = await upload(api, "c.csv", CANDLES, kind="candles", symbol="ETHUSD")
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "timeframe"


async def test_an_upload_file_name_is_made_safe(api: httpx.AsyncClient) -> None:
    response = await upload(api, "my churn (v2).csv", CHURN)
    assert response.status_code == 201, response.text
    assert response.json()["path"] == "my_churn__v2_.csv"


async def test_a_table_file_over_the_limit_is_a_413_and_leaves_no_file(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    # under the body limit (1 MiB) with the form around it, over it once the file alone is counted
    settings.max_upload_bytes = 512 * 1024
    response = await upload(api, "big.csv", b"a,b\n" + b"1,2\n" * 200_000)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert list(settings.data_dir.iterdir()) == []


def tabular(dataset: str, target: str, task: str) -> dict[str, Any]:
    return {"workload": "tabular", "tabular": {"dataset": dataset, "target": target, "task": task}}


@pytest.mark.parametrize(
    ("target", "task", "words"),
    [
        ("nope", "classification", "no target column 'nope'; pick one of its columns: x, flat, one, y"),
        ("flat", "regression", "same value 7.0 on every row"),
        ("one", "classification", "single class 'a'"),
    ],
)
async def test_a_training_on_a_bad_target_is_a_422_naming_tabular_target(
    api: httpx.AsyncClient, target: str, task: str, words: str
) -> None:
    frame = pd.DataFrame({"x": range(20), "flat": 7, "one": "a", "y": [0, 1] * 10})
    assert (await upload(api, "t.bin", parquet_bytes(frame), name="t.parquet")).status_code == 201
    response = await api.post("/api/v1/trainings", json=tabular("t.parquet", target, task))
    assert response.status_code == 422, response.text
    assert error_of(response)["details"]["field"] == "tabular.target"
    assert words in error_of(response)["message"]
    assert (await api.get("/api/v1/operations")).json()["items"] == []


async def test_the_openapi_declares_the_preview_and_the_table_upload(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/api/v1/data/{name}/preview" in spec["paths"]
    body = spec["paths"]["/api/v1/data"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = spec["components"]["schemas"][body["$ref"].rpartition("/")[2]]["properties"]
    assert {"file", "symbol", "timeframe", "kind", "name"} <= set(form)


async def test_listing_skips_an_unreadable_table_but_keeps_the_rest(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    (settings.data_dir / "broken.parquet").write_bytes(b"not parquet")
    Path(settings.data_dir / "ok.csv").write_bytes(CHURN)
    listed = (await api.get("/api/v1/data")).json()["items"]
    assert [d["path"] for d in listed] == ["ok.csv"]
