"""The result callback: a verified, checked result completes the operation once; every bad one is a
4xx with nothing stored and the operation still running."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from shared.contracts.handoff import payload_bytes
from shared.contracts.signing import sign
from shared.trainkit.checkpoint import checkpoint_bytes
from tests.backend.host_fakes import result_payload, tiny_model
from tests.backend.host_harness import SECRET, HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio


async def _running(backend: HostBackend) -> tuple[str, str]:
    op_id = await backend.start_training()
    body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    assert body["status"] == "running"
    return op_id, body["host_session_id"]


def _model_file(tmp_path: Path, data: bytes | None = None) -> tuple[Path, dict[str, Any]]:
    model, config = tiny_model()
    path = tmp_path / "host-model.pt"
    path.write_bytes(data if data is not None else model)
    return path, config


async def test_a_signed_result_completes_the_operation_with_the_hosts_exact_weights(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path)
        response = await backend.post_result(result_payload(op_id, session_id, model_file, config))
        assert response.status_code == 200, response.text
        assert response.json()["duplicate"] is False
        op = await backend.operation(op_id)
        assert op["status"] == "completed"
        assert op["result"]["model"]["version"] == 1
        stored = Path(op["result"]["model"]["path"]) / "model.pt"
        assert stored.read_bytes() == model_file.read_bytes()
        assert backend.hosts.session_of(op_id).acked


async def test_the_same_result_twice_gives_one_model_version(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path)
        body = result_payload(op_id, session_id, model_file, config)
        first = await backend.post_result(body)
        second = await backend.post_result(body)
        assert (first.status_code, second.status_code) == (200, 200)
        assert second.json()["duplicate"] is True
        assert backend.versions() == [1]


def _evil_checkpoint(marker: Path) -> bytes:
    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    _, config = tiny_model()
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "extra": {"x": Exploit()}}, buffer)
    honest = checkpoint_bytes({}, model_class="MLP", config=config)
    # Re-frame the exploit payload with a correct header so only the unpickling can refuse it.
    prefix_len = 8 + 2 + 4 + 32
    (header_len,) = struct.unpack_from(">I", honest, 10)
    header = json.loads(honest[prefix_len : prefix_len + header_len])
    payload = buffer.getvalue()
    header.update(payload_sha256=hashlib.sha256(payload).hexdigest(), payload_bytes=len(payload))
    header_json = json.dumps(header, sort_keys=True).encode()
    prefix = honest[:10] + len(header_json).to_bytes(4, "big") + hashlib.sha256(header_json).digest()
    return prefix + header_json + payload


def _tampered_sha(body: bytes) -> bytes:
    payload = json.loads(body)
    payload["model"]["sha256"] = "0" * 64
    return payload_bytes(payload)


def _too_big_inline(body: bytes) -> bytes:
    payload = json.loads(body)
    blob = gzip.compress(os.urandom(200 * 1024), compresslevel=1)
    payload["model"].update(data=base64.b64encode(blob).decode(), size=200 * 1024)
    return payload_bytes(payload)


Rejection = tuple[Callable[[bytes], tuple[bytes, dict[str, str] | None]], int]
REJECTIONS: dict[str, Rejection] = {
    "bad signature": (lambda body: (body, sign("another-secret", body)), 401),
    "stale timestamp": (lambda body: (body, sign(SECRET, body, timestamp=1_600_000_000)), 401),
    "tampered body": (
        lambda body: (body.replace(b'"accuracy":0.5', b'"accuracy":0.9'), sign(SECRET, body)),
        401,
    ),
    "unsigned": (lambda body: (body, {}), 401),
    "bad sha256": (lambda body: (_tampered_sha(body), None), 422),
    "not json": (lambda body: (b"{not json", None), 422),
    "oversize body": (lambda body: (body + b" " * (300 * 1024), None), 413),
    "oversize inline model": (lambda body: (_too_big_inline(body), None), 413),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
async def test_a_bad_result_is_refused_and_nothing_is_stored(tmp_path: Path, case: str) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path)
        make, status = REJECTIONS[case]
        body, headers = make(result_payload(op_id, session_id, model_file, config))
        response = await backend.post_result(body, headers)
        assert response.status_code == status, response.text
        assert "error" in response.json()
        assert backend.versions() == []
        assert (await backend.operation(op_id))["status"] == "running"


async def test_a_non_weights_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path, _evil_checkpoint(marker))
        response = await backend.post_result(result_payload(op_id, session_id, model_file, config))
        assert response.status_code == 422, response.text
        assert "refusing to load" in response.json()["error"]["message"]
        assert not marker.exists()
        assert backend.versions() == []
        assert (await backend.operation(op_id))["status"] == "running"


async def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model, _ = tiny_model(hidden=8)
        _, other_config = tiny_model(hidden=16)
        path = tmp_path / "m.pt"
        path.write_bytes(model)
        response = await backend.post_result(result_payload(op_id, session_id, path, other_config))
        assert response.status_code == 422
        assert backend.versions() == []


async def test_a_result_from_an_earlier_session_is_a_conflict(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, _ = await _running(backend)
        model_file, config = _model_file(tmp_path)
        response = await backend.post_result(result_payload(op_id, "hs_old", model_file, config))
        assert response.status_code == 409
        assert backend.versions() == []


async def test_a_result_for_an_unknown_operation_is_not_found(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        model_file, config = _model_file(tmp_path)
        response = await backend.post_result(result_payload("op_nope", "hs_1", model_file, config))
        assert response.status_code == 404


async def test_a_model_sent_by_reference_is_streamed_checked_and_stored(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path)
        url = f"/training/result/{session_id}/model"
        backend.hosts.models[url] = model_file
        response = await backend.post_result(
            result_payload(op_id, session_id, model_file, config, external_url=url)
        )
        assert response.status_code == 200, response.text
        stored = Path((await backend.operation(op_id))["result"]["model"]["path"]) / "model.pt"
        assert stored.read_bytes() == model_file.read_bytes()


async def test_a_streamed_model_with_another_checksum_is_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path)
        url = f"/training/result/{session_id}/model"
        body = result_payload(op_id, session_id, model_file, config, external_url=url)
        swapped = tmp_path / "swapped.pt"
        swapped.write_bytes(tiny_model(hidden=9)[0])
        backend.hosts.models[url] = swapped
        response = await backend.post_result(body)
        assert response.status_code == 422
        assert backend.versions() == []
        assert (await backend.operation(op_id))["status"] == "running"


async def test_another_model_for_an_already_completed_operation_is_a_conflict(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        model_file, config = _model_file(tmp_path)
        assert (await backend.post_result(result_payload(op_id, session_id, model_file, config))).is_success
        other = tmp_path / "other.pt"
        other.write_bytes(tiny_model(hidden=8, inputs=4)[0][:-1] + b"\x00")
        response = await backend.post_result(result_payload(op_id, session_id, other, config))
        assert response.status_code == 409
        assert backend.versions() == [1]
