"""The host takes a signed request once, only on the method and path it was signed for; it refuses an
oversize body before verifying anything; it signs the answers that carry a result."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.contracts.host import MODEL_SHA256_HEADER, ExternalModel, ResultPayload
from shared.contracts.signing import ID_HEADER, sign, sign_request, verify_response
from tests.host_service.conftest import (
    SECRET,
    FakeBackend,
    Host,
    host_settings,
    run_host,
    start_body,
    wait_status,
    write_fake_result,
)
from tests.host_service.fakes import FakeLauncher

pytestmark = pytest.mark.anyio


def _raw(host: Host) -> httpx.AsyncClient:
    """A client that signs nothing by itself: each test brings its own headers."""
    return httpx.AsyncClient(transport=host.client._transport, base_url="http://host.test")


async def _completed_session(host: Host) -> str:
    response = await host.client.post("/training/start", json=start_body())
    session_id: str = response.json()["session_id"]
    await wait_status(host, session_id, "running")
    host.launcher.workers[0].complete(write_fake_result())
    await wait_status(host, session_id, "completed")
    return session_id


async def test_a_signed_request_replayed_as_is_is_refused_and_nothing_happens_twice(host: Host) -> None:
    body = json.dumps(start_body()).encode()
    headers = {"content-type": "application/json", **sign_request(SECRET, "POST", "/training/start", body)}
    async with _raw(host) as raw:
        first = await raw.post("/training/start", content=body, headers=headers)
        again = await raw.post("/training/start", content=body, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "replayed"
    assert "already received" in again.json()["error"]["message"]
    await wait_status(host, first.json()["session_id"], "running")
    assert len(host.launcher.workers) == 1
    assert len((await host.client.get("/training/sessions")).json()["items"]) == 1


async def test_a_bodyless_stop_cannot_be_replayed_as_an_ack_or_with_another_method(host: Host) -> None:
    session_id = await _completed_session(host)
    stop = f"/training/stop/{session_id}"
    async with _raw(host) as raw:
        as_ack = await raw.post(
            f"/training/result/{session_id}/ack", headers=sign_request(SECRET, "POST", stop)
        )
        as_get = await raw.get(stop, headers=sign_request(SECRET, "POST", stop))
        with_query = await raw.post(stop + "?force=1", headers=sign_request(SECRET, "POST", stop))
    assert [as_ack.status_code, as_get.status_code, with_query.status_code] == [401, 401, 401]
    assert as_ack.json()["error"]["code"] == "bad_signature"
    status = (await host.client.get(f"/training/status/{session_id}")).json()
    assert status["result_acknowledged"] is False
    assert (host.settings.work_dir / "sessions" / session_id / "result").exists()


@pytest.mark.parametrize("offset", [-3600, 3600], ids=["stale", "future"])
async def test_a_timestamp_outside_the_window_is_refused(host: Host, offset: int) -> None:
    headers = sign_request(SECRET, "GET", "/training/sessions", timestamp=int(time.time()) + offset)
    async with _raw(host) as raw:
        response = await raw.get("/training/sessions", headers=headers)
    assert response.status_code == 401
    assert "stale timestamp" in response.json()["error"]["message"]


async def test_a_backend_of_the_old_scheme_gets_a_401_naming_the_new_header(host: Host) -> None:
    async with _raw(host) as raw:
        response = await raw.get("/health", headers=sign(SECRET, b""))
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "missing header modelyard-request-signature" in message
    assert "upgrade both together" in message


async def test_a_loopback_caller_is_not_exempt(host: Host) -> None:
    transport = httpx.ASGITransport(app=host.client._transport.app, client=("127.0.0.1", 5555))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:5002") as loopback:
        response = await loopback.get("/health")
    assert response.status_code == 401


async def test_an_oversize_body_is_refused_before_authentication_without_reading_it_all(
    tmp_path: Path,
) -> None:
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            sent.append(1)
            yield b"x" * 1024

    settings = host_settings(tmp_path, max_request_bytes=4096)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        async with _raw(host) as raw:
            declared = await raw.post(
                "/training/start", content=b"x" * 8192, headers={"content-length": "8192"}
            )
            streamed = await raw.post("/training/start", content=body())
        assert [declared.status_code, streamed.status_code] == [413, 413]
        assert streamed.json()["error"]["code"] == "payload_too_large"
        assert len(sent) < 64  # refused as soon as the limit passed, not after the whole body
        assert host.launcher.workers == []


async def test_a_pulled_result_is_signed_for_the_request_over_its_body(host: Host) -> None:
    session_id = await _completed_session(host)
    path = f"/training/result/{session_id}"
    request_headers = sign_request(SECRET, "GET", path)
    async with _raw(host) as raw:
        pulled = await raw.get(path, headers=request_headers)
    assert pulled.status_code == 200
    sha256 = hashlib.sha256(pulled.content).hexdigest()
    assert pulled.headers[MODEL_SHA256_HEADER] == sha256
    verify_response([SECRET], pulled.headers, request_headers[ID_HEADER], "GET", path, sha256)
    assert ResultPayload.model_validate_json(pulled.content).session_id == session_id


async def test_a_streamed_model_is_signed_over_its_declared_sha256(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, inline_model_limit_bytes=1000)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        session_id = await _completed_session(host)
        payload = ResultPayload.model_validate_json(
            (await host.client.get(f"/training/result/{session_id}")).content
        )
        assert isinstance(payload.model, ExternalModel)
        path = payload.model.url
        request_headers = sign_request(SECRET, "GET", path)
        async with _raw(host) as raw:
            raw_model = await raw.get(path, headers=request_headers)
        declared = raw_model.headers[MODEL_SHA256_HEADER]
        assert declared == hashlib.sha256(raw_model.content).hexdigest() == payload.model.sha256
        verify_response([SECRET], raw_model.headers, request_headers[ID_HEADER], "GET", path, declared)
