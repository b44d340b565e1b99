"""Model aliases through the API: set, move (recorded), remove, resolve, download by alias, bad input."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import httpx
import pytest

from backend.components import Components
from backend.domain.tokens import TokenScope
from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app

pytestmark = pytest.mark.anyio

BASE = "/api/v1/models/trend/EURUSD_1h"


@pytest.fixture
def three_versions(fakes: Fakes) -> Fakes:
    model = fakes.models.versions[("trend", "EURUSD_1h")]
    for v in (2, 3):
        model[v] = {"model.pt": f"weights-{v}".encode(), "metrics.json": b"{}"}
    return fakes


async def test_alias_set_resolves_in_detail_listing_version_and_download(
    api: httpx.AsyncClient, three_versions: Fakes
) -> None:
    put = await api.put(f"{BASE}/aliases/production", json={"version": 2})
    assert put.status_code == 200, put.text
    assert put.json()["action"] == "set"
    assert put.json()["to_version"] == 2
    listing = (await api.get("/api/v1/models")).json()
    assert listing[0]["aliases"] == {"production": 2}
    detail = (await api.get(BASE)).json()
    assert {v["version"]: v["aliases"] for v in detail["versions"]} == {3: [], 2: ["production"], 1: []}
    version = await api.get(f"{BASE}/versions/production")
    assert version.status_code == 200
    assert version.json()["version"] == 2
    assert version.json()["aliases"] == ["production"]
    download = await api.get(f"{BASE}/versions/production/download")
    assert download.status_code == 200, download.text
    assert download.headers["x-model-version"] == "2"
    assert zipfile.ZipFile(io.BytesIO(download.content)).read("model.pt") == b"weights-2"
    by_number = await api.get(f"{BASE}/versions/3/download")
    assert zipfile.ZipFile(io.BytesIO(by_number.content)).read("model.pt") == b"weights-3"


async def test_alias_move_is_recorded_with_the_version_it_left(
    api: httpx.AsyncClient, three_versions: Fakes
) -> None:
    await api.put(f"{BASE}/aliases/production", json={"version": 1})
    moved = (await api.put(f"{BASE}/aliases/production", json={"version": 3})).json()
    assert (moved["action"], moved["from_version"], moved["to_version"]) == ("moved", 1, 3)
    assert (await api.get(f"{BASE}/versions/production")).json()["version"] == 3
    assert (await api.delete(f"{BASE}/aliases/production")).status_code == 204
    body = (await api.get(f"{BASE}/aliases")).json()
    assert body["aliases"] == []
    assert [(h["action"], h["from_version"], h["to_version"]) for h in body["history"]] == [
        ("removed", 3, None),
        ("moved", 1, 3),
        ("set", None, 1),
    ]
    gone = await api.get(f"{BASE}/versions/production/download")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "alias_not_found"


async def test_deleting_a_version_removes_its_aliases(api: httpx.AsyncClient, three_versions: Fakes) -> None:
    await api.put(f"{BASE}/aliases/staging", json={"version": 3})
    assert (await api.delete(f"{BASE}/versions/3")).status_code == 204
    assert (await api.get(f"{BASE}/aliases")).json()["aliases"] == []
    assert (await api.get(f"{BASE}/versions/staging")).status_code == 404


@pytest.mark.parametrize("alias", ["a/b", "9lives", "-x", "has space", "x" * 65])
async def test_bad_alias_names_are_422_naming_the_field(api: httpx.AsyncClient, alias: str) -> None:
    response = await api.put(f"{BASE}/aliases/{alias}", json={"version": 1})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "alias"
    assert "starting with a letter" in error["message"]


async def test_unknown_version_or_model_or_alias_is_a_4xx_that_says_why(api: httpx.AsyncClient) -> None:
    unknown = await api.put(f"{BASE}/aliases/production", json={"version": 7})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["field"] == "version"
    assert "[1]" in unknown.json()["error"]["message"]
    assert (await api.put(f"{BASE}/aliases/production", json={"version": 0})).status_code == 422
    assert (await api.put(f"{BASE}/aliases/production", json={})).status_code == 422
    no_model = await api.put("/api/v1/models/trend/nothing/aliases/production", json={"version": 1})
    assert no_model.status_code == 404
    missing = await api.delete(f"{BASE}/aliases/production")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "alias_not_found"


async def test_alias_moves_record_the_token_and_need_admin(settings: Settings, fakes: Fakes) -> None:
    app, lifespan = await start_app(settings, fakes)
    components: Components = app.state.components
    admin = components.tokens.create("admin-ops", TokenScope.ADMIN, timedelta(hours=1))[1]
    train = components.tokens.create("train-bot", TokenScope.TRAIN, timedelta(hours=1))[1]
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            refused = await client.put(
                f"{BASE}/aliases/production",
                json={"version": 1},
                headers={"Authorization": f"Bearer {train}"},
            )
            assert refused.status_code == 403
            done = await client.put(
                f"{BASE}/aliases/production",
                json={"version": 1},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert done.json()["by"] == "admin-ops"
            read = await client.get(f"{BASE}/aliases", headers={"Authorization": f"Bearer {train}"})
            assert read.json()["aliases"][0]["set_by"] == "admin-ops"
    finally:
        await lifespan.__aexit__(None, None, None)
