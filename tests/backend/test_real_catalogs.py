"""The API over the real file adapters (candle CSVs, strategy files, the model store) in temp folders."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from backend.components import Adapters
from backend.main import create_app
from backend.settings import Settings
from shared.trainkit.executor.types import ModelArtifact
from tests.backend.conftest import Fakes

pytestmark = pytest.mark.anyio

CSV = b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00,1,2,0.5,1.5,100\n2024-01-01T01:00:00,1,2,0.5,1.5,90\n"


@pytest.fixture
async def real(settings: Settings, fakes: Fakes) -> AsyncIterator[httpx.AsyncClient]:
    """Fake engine; real CandleFiles, StrategyFiles and LocalModelStore."""
    settings.strategies_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, Adapters(engine=fakes.engine, clock=fakes.clock))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_the_upload_answer_describes_the_stored_file_like_the_listing(real: httpx.AsyncClient) -> None:
    files = {"file": ("c.csv", CSV, "text/csv")}
    uploaded = await real.post("/api/v1/data", files=files, data={"symbol": "ETHUSD", "timeframe": "4h"})
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert body["size_bytes"] == len(CSV)
    assert (body["start"], body["end"]) == ("2024-01-01T00:00:00+00:00", "2024-01-01T01:00:00+00:00")
    assert body["path"] == "ETHUSD_4h.csv"
    assert (await real.get("/api/v1/data")).json()["items"] == [body]


async def test_a_timeframe_with_an_underscore_is_refused(real: httpx.AsyncClient) -> None:
    files = {"file": ("c.csv", CSV, "text/csv")}
    response = await real.post("/api/v1/data", files=files, data={"symbol": "ETH", "timeframe": "4_h"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "timeframe"


async def test_writing_samples_never_overwrites_an_uploaded_dataset(
    real: httpx.AsyncClient, settings: Settings
) -> None:
    files = {"file": ("c.csv", CSV, "text/csv")}
    await real.post("/api/v1/data", files=files, data={"symbol": "EURUSD", "timeframe": "1h"})
    listed = (await real.post("/api/v1/data/sample")).json()["items"]
    assert (settings.data_dir / "EURUSD_1h.csv").read_bytes() == CSV
    assert len(listed) > 1
    assert not list(settings.data_dir.glob(".samples-*"))


async def test_strategies_are_listed_by_paths_inside_their_folder(
    real: httpx.AsyncClient, settings: Settings
) -> None:
    (settings.strategies_dir / "broken.yaml").write_text("name: [unclosed\n")
    listed = (await real.get("/api/v1/strategies")).json()
    assert [(s["name"], s["path"], s["valid"]) for s in listed] == [("broken", "broken.yaml", False)]
    missing = await real.post(
        "/api/v1/trainings", json={"strategy": "nope", "symbol": "X", "timeframe": "1h"}
    )
    root = str(settings.strategies_dir.parent)
    assert root not in str(listed)
    assert root not in missing.text


def store_model(app: object, name: str) -> None:
    store = app.state.components.models  # type: ignore[attr-defined]
    store.save(ModelArtifact("trend", name, b"weights", {"h": [4]}, {"accuracy": 0.5}, {}, {}))


async def test_models_with_plus_in_their_name_are_shown_downloaded_and_deleted(
    real: httpx.AsyncClient,
) -> None:
    store_model(real.app, "AAPL+BTCUSD_1d+1h")  # type: ignore[attr-defined]
    base = "/api/v1/models/trend/AAPL+BTCUSD_1d+1h"
    assert (await real.get(base)).status_code == 200
    assert (await real.get(f"{base}/versions/1/download")).status_code == 200
    assert (await real.delete(f"{base}/versions/1")).status_code == 204


async def test_a_version_whose_files_no_longer_match_their_sha256_is_not_served(
    real: httpx.AsyncClient, settings: Settings
) -> None:
    store_model(real.app, "EURUSD_1h")  # type: ignore[attr-defined]
    (settings.models_dir / "trend" / "EURUSD_1h_v1" / "model.pt").write_bytes(b"tampered")
    response = await real.get("/api/v1/models/trend/EURUSD_1h/versions/1/download")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "model_corrupted"
    assert "model.pt" in error["message"]


async def test_the_version_comes_from_the_package_metadata(real: httpx.AsyncClient) -> None:
    assert (await real.get("/api/v1/system")).json()["version"] == version("modelyard")
    assert (await real.get("/openapi.json")).json()["info"]["version"] == version("modelyard")


def test_leftover_temp_model_folders_go_at_start_when_alone_else_only_when_old(tmp_path: Path) -> None:
    import os
    import time

    from backend.adapters.storage import LocalModelStore
    from backend.services.stale_models import StaleModelSweeper
    from shared.trainkit.storage.names import TEMP_PREFIX

    store = LocalModelStore.at(tmp_path)
    store.save(ModelArtifact("trend", "EURUSD_1h", b"w", {}, {}, {}, {}))
    fresh, old = tmp_path / "trend" / f"{TEMP_PREFIX}a", tmp_path / "trend" / f"{TEMP_PREFIX}b"
    fresh.mkdir()
    old.mkdir()
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))
    sweeper = StaleModelSweeper(store.cleanup_stale, max_age_s=3600)
    assert sweeper.sweep() == [str(old)]
    assert fresh.exists()
    assert sweeper.sweep(everything=True) == [str(fresh)]
