"""Hosts fetch training data signed over method and path; without a valid signature anyone is refused
(loopback included) once a secret is set; without a secret only loopback callers may download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from shared.contracts.signing import sign, sign_request
from tests.backend.host_harness import SECRET, host_backend, host_settings

pytestmark = pytest.mark.anyio

URL = "/api/v1/data/EURUSD/1h/download"
TABULAR = "a,b,y\n1,2,x\n3,4,z\n"


async def _remote_get(app: object, headers: dict[str, str], url: str = URL) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(url, headers=headers)


async def test_a_signed_host_downloads_data_from_another_machine(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        response = await _remote_get(backend.app, sign_request(SECRET, "GET", URL))
        assert response.status_code == 200
        assert response.text.startswith("timestamp,open")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        sign_request("wrong-secret", "GET", URL),
        sign_request(SECRET, "GET", "/api/v1/data/EURUSD/4h/download"),
        sign_request(SECRET, "POST", URL),
        sign(SECRET, b""),
    ],
    ids=["unsigned", "bad signature", "signed for another path", "signed for another method", "old scheme"],
)
async def test_a_remote_caller_without_a_valid_signature_is_refused(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        response = await _remote_get(backend.app, headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad_signature"


async def test_a_loopback_caller_is_not_exempt_once_a_secret_is_set(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        response = await backend.client.get(URL)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "request refused: missing header webhook-id"
        assert (await backend.signed_get(URL)).status_code == 200


async def test_a_signed_download_replayed_as_is_is_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        headers = sign_request(SECRET, "GET", URL)
        first, again = await _remote_get(backend.app, headers), await _remote_get(backend.app, headers)
        assert first.status_code == 200
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "replayed"


async def test_the_old_scheme_is_refused_naming_the_missing_header(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        response = await _remote_get(backend.app, sign(SECRET, b""))
        assert response.status_code == 401
        message = response.json()["error"]["message"]
        assert "missing header modelyard-request-signature" in message
        assert "upgrade both together" in message


async def test_without_a_shared_secret_only_loopback_may_download(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, shared_secret=None)) as backend:
        assert (await backend.client.get(URL)).status_code == 200
        assert (await _remote_get(backend.app, {})).status_code == 401


async def test_a_tabular_host_training_sends_its_dataset_which_the_host_may_download(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        (tmp_path / "data" / "iris.csv").write_text(TABULAR)
        op_id = await backend.start_training(
            workload="tabular",
            strategy=None,
            symbol=None,
            timeframe=None,
            tabular={"dataset": "iris", "target": "y"},
        )
        await backend.wait_status(op_id, "running")
        command = next(iter(backend.hosts.by_id.values())).command
        assert command.request.tabular is not None
        assert command.request.tabular.dataset == "iris.csv"
        [ref] = command.datasets
        assert (ref.filename, ref.sha256) == ("iris.csv", hashlib.sha256(TABULAR.encode()).hexdigest())
        assert ref.url == "http://testserver/api/v1/data/files/iris/download"
        path = ref.url.removeprefix("http://testserver")
        response = await _remote_get(backend.app, sign_request(SECRET, "GET", path), path)
        assert response.status_code == 200
        assert response.text == TABULAR
        assert response.headers["x-content-sha256"] == ref.sha256
        assert (await _remote_get(backend.app, {}, path)).status_code == 401


async def test_data_files_outside_the_data_folder_cannot_be_named(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        (tmp_path / "secret.csv").write_text("x\n")
        for name in ("..%2Fsecret.csv", ".hidden.csv", "sub/..%2F..%2Fsecret.csv"):
            response = await backend.signed_get(f"/api/v1/data/files/{name}/download")
            assert response.status_code in (404, 422), name
            assert response.text != "x\n"


async def test_a_plugin_training_in_host_mode_is_refused_with_the_reason(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        body = {"workload": "plugin", "plugin": "pkg.mod:make", "execution_mode": "host"}
        response = await backend.client.post("/api/v1/trainings", json=body)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["details"]["field"] == "execution_mode"
        assert "allowlisted per machine" in error["message"]
