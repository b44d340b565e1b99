"""Host messages to the backend are accepted once: a replayed callback or download is refused (409)
with nothing stored; a host's retry, signed afresh, is answered as a duplicate (one model version);
a result pulled from a host is stored only when the host signed it for that very request."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from shared.contracts.host import MODEL_SHA256_HEADER
from shared.contracts.signing import (
    ID_HEADER,
    SignatureError,
    sign,
    sign_request,
    sign_response,
    verify_request,
)
from tests.backend.host_fakes import result_payload, tiny_model
from tests.backend.host_harness import CALLBACK, SECRET, HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio
NOW = "2025-01-05T00:00:00Z"


async def _running(backend: HostBackend) -> tuple[str, str]:
    op_id = await backend.start_training()
    body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    return op_id, body["host_session_id"]


def _payload(tmp_path: Path, op_id: str, session_id: str) -> bytes:
    model, config = tiny_model()
    path = tmp_path / "host-model.pt"
    path.write_bytes(model)
    return result_payload(op_id, session_id, path, config)


async def test_a_replayed_callback_is_refused_and_a_fresh_retry_is_a_duplicate(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        body = _payload(tmp_path, op_id, session_id)
        captured = sign(SECRET, body)
        first = await backend.post_result(body, captured)
        replayed = await backend.post_result(body, captured)
        retried = await backend.post_result(body, sign(SECRET, body))  # what the host sends on a retry
        assert [first.status_code, replayed.status_code, retried.status_code] == [200, 409, 200]
        assert replayed.json()["error"]["code"] == "replayed"
        assert retried.json()["duplicate"] is True
        assert backend.versions() == [1]


async def test_a_replay_of_a_refused_callback_is_refused_too_and_stores_nothing(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        body = _payload(tmp_path, "op_unknown", session_id)
        captured = sign(SECRET, body)
        assert (await backend.post_result(body, captured)).status_code == 404
        assert (await backend.post_result(body, captured)).status_code == 409
        assert backend.versions() == []
        assert (await backend.operation(op_id))["status"] == "running"


@pytest.mark.parametrize("offset", [-3600, 3600], ids=["stale", "future"])
async def test_a_callback_outside_the_window_is_refused(tmp_path: Path, offset: int) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        body = _payload(tmp_path, op_id, session_id)
        response = await backend.post_result(body, sign(SECRET, body, timestamp=int(time.time()) + offset))
        assert response.status_code == 401
        assert "stale timestamp" in response.json()["error"]["message"]
        assert backend.versions() == []
        assert (await backend.operation(op_id))["status"] == "running"


async def test_a_callback_signed_as_a_request_is_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        body = _payload(tmp_path, op_id, session_id)
        response = await backend.post_result(body, sign_request(SECRET, "POST", CALLBACK, body))
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "request refused: missing header webhook-signature"
        assert backend.versions() == []


async def test_a_loopback_callback_without_a_signature_is_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        response = await backend.post_result(_payload(tmp_path, op_id, session_id), {})
        assert response.status_code == 401
        assert backend.versions() == []


async def test_an_oversize_callback_is_refused_before_its_signature_is_looked_at(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, callback_max_bytes=2048)) as backend:
        await _running(backend)
        response = await backend.client.post(CALLBACK, content=b"x" * 4096)  # unsigned
        assert response.status_code == 413
        assert backend.versions() == []


class MockHost:
    """A host as a MockTransport handler: one session that completes at once, whose pulled result is
    answered tampered (signed over other bytes) until ``honest`` is set. Verifies every request."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.honest = False
        self.pulls = 0
        self.acks = 0
        self.operation_id = ""
        self.refused: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        try:
            verify_request([SECRET], dict(request.headers), request.method, path, request.content)
        except SignatureError as exc:
            self.refused.append(exc.reason)
            return httpx.Response(401, json={"error": {"code": "bad_signature", "message": exc.reason}})
        if path == "/health":
            health = {"version": "t", "device": {"kind": "cpu", "name": "CPU"}, "capacity": 1}
            return httpx.Response(200, json={**health, "sessions_in_use": 0, "signing_required": True})
        if path == "/training/start":
            self.operation_id = json.loads(request.content)["operation_id"]
            return httpx.Response(202, json=self._view("running"))
        if path == "/training/status/hs_1":
            return httpx.Response(200, json=self._view("completed"))
        if path == "/training/result/hs_1":
            return self._result(request, path)
        if path == "/training/result/hs_1/ack":
            self.acks += 1
            return httpx.Response(200, json=self._view("completed"))
        return httpx.Response(404)

    def _view(self, status: str) -> dict[str, object]:
        return {
            "session_id": "hs_1",
            "operation_id": self.operation_id,
            "status": status,
            "created_at": NOW,
            "updated_at": NOW,
        }

    def _result(self, request: httpx.Request, path: str) -> httpx.Response:
        self.pulls += 1
        body = _payload(self.tmp_path, self.operation_id, "hs_1")
        signed_body = body if self.honest else body.replace(b'"accuracy":0.5', b'"accuracy":0.1')
        sha256 = hashlib.sha256(signed_body).hexdigest()
        headers = sign_response(SECRET, request.headers[ID_HEADER], "GET", path, sha256)
        return httpx.Response(200, content=body, headers={MODEL_SHA256_HEADER: sha256, **headers})


async def test_a_pulled_result_whose_signature_does_not_match_is_not_stored(tmp_path: Path) -> None:
    host = MockHost(tmp_path)
    settings = host_settings(tmp_path, host_result_pull_delay_s=0.05)
    async with host_backend(settings, host_transport=httpx.MockTransport(host)) as backend:
        op_id = await backend.start_training()
        await backend.wait_for(op_id, lambda b: b["host_session_id"] == "hs_1", "the host session")
        deadline = asyncio.get_running_loop().time() + 10
        while host.pulls < 3:
            assert asyncio.get_running_loop().time() < deadline, "the backend never pulled the result"
            await asyncio.sleep(0.02)
        assert (await backend.operation(op_id))["status"] == "running"
        assert backend.versions() == []
        assert host.acks == 0
        host.honest = True
        done = await backend.wait_status(op_id, "completed")
        assert done["result"]["model"]["version"] == 1
        assert backend.versions() == [1]
        assert host.refused == []
