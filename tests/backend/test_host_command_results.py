"""A host's command result: several artefact files as one tar in the model slot, unpacked safely and
stored file by file with no weights check; or no model at all."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.bundle import pack_files
from shared.contracts.handoff import (
    build_payload,
    describe_model_external,
    encode_model_inline,
    payload_bytes,
)
from tests.backend.host_harness import HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio

RESULT = {"device": "cpu", "history": [], "warnings": [], "command": {"name": "toy", "exit_code": 0}}


async def _running(backend: HostBackend) -> tuple[str, str]:
    op_id = await backend.start_training()
    body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    return op_id, body["host_session_id"]


def _outputs(tmp_path: Path) -> dict[str, Path]:
    out = tmp_path / "output"
    (out / "sub").mkdir(parents=True)
    (out / "model.pt").write_bytes(b"not a checkpoint: a command's own weights format")
    (out / "sub" / "training.json").write_text('{"steps": 3}')
    return {"model.pt": out / "model.pt", "sub/training.json": out / "sub" / "training.json"}


def _bundle_payload(
    op_id: str, session_id: str, bundle: Path, listed: dict[str, Any], *, external_url: str | None = None
) -> bytes:
    model = describe_model_external(bundle, external_url) if external_url else encode_model_inline(bundle)
    artifact = {
        "strategy": "toy",
        "name": "toy",
        "config": {"params": {"steps": 3}},
        "metrics": {"final": {"loss": 0.1}},
        "features": {},
        "metadata": {"workload": "command"},
        "bundle": "tar",
        "files": listed,
    }
    return payload_bytes(
        build_payload(
            operation_id=op_id, session_id=session_id, result=RESULT, artifact=artifact, model=model
        )
    )


def _stored(op: dict[str, Any]) -> Path:
    return Path(op["result"]["model"]["path"])


async def test_a_bundle_is_stored_as_the_versions_files_without_a_weights_check(tmp_path: Path) -> None:
    files = _outputs(tmp_path)
    listed = pack_files(files, tmp_path / "artifacts.tar")
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        response = await backend.post_result(
            _bundle_payload(op_id, session_id, tmp_path / "artifacts.tar", listed)
        )
        assert response.status_code == 200, response.text
        op = await backend.operation(op_id)
        assert op["status"] == "completed"
        version = _stored(op)
        for name, source in files.items():
            assert (version / "files" / name).read_bytes() == source.read_bytes()
        metadata = json.loads((version / "metadata.json").read_text())
        assert {n: metadata["files"][f"files/{n}"]["sha256"] for n in files} == {
            n: e["sha256"] for n, e in listed.items()
        }
        assert not (version / "model.pt").exists()
        tar_sha = hashlib.sha256((tmp_path / "artifacts.tar").read_bytes()).hexdigest()
        assert op["result"]["host_model_sha256"] == metadata["host_model_sha256"] == tar_sha
        assert backend.hosts.session_of(op_id).acked


async def test_a_streamed_bundle_is_fetched_checked_and_stored(tmp_path: Path) -> None:
    files = _outputs(tmp_path)
    listed = pack_files(files, tmp_path / "artifacts.tar")
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        url = f"/training/result/{session_id}/model"
        backend.hosts.models[url] = tmp_path / "artifacts.tar"
        body = _bundle_payload(op_id, session_id, tmp_path / "artifacts.tar", listed, external_url=url)
        response = await backend.post_result(body)
        assert response.status_code == 200, response.text
        version = _stored(await backend.operation(op_id))
        assert (version / "files" / "sub" / "training.json").read_text() == '{"steps": 3}'


def _evil_tar(path: Path, name: str, data: bytes, kind: bytes = tarfile.REGTYPE) -> None:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("case", ["parent", "absolute", "symlink", "sha mismatch"])
async def test_an_unsafe_or_tampered_bundle_is_refused_and_nothing_is_stored(
    tmp_path: Path, case: str
) -> None:
    name, data, kind = {
        "parent": ("../escaped", b"x", tarfile.REGTYPE),
        "absolute": (str(tmp_path / "escaped"), b"x", tarfile.REGTYPE),
        "symlink": ("escaped", b"", tarfile.SYMTYPE),
        "sha mismatch": ("weights.bin", b"tampered", tarfile.REGTYPE),
    }[case]
    _evil_tar(tmp_path / "evil.tar", name, data, kind)
    listed = {
        name: {
            "sha256": hashlib.sha256(b"original" if case == "sha mismatch" else data).hexdigest(),
            "size": len(data),
        }
    }
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        response = await backend.post_result(
            _bundle_payload(op_id, session_id, tmp_path / "evil.tar", listed)
        )
        assert response.status_code == 422, response.text
        assert "artefact bundle was refused" in response.json()["error"]["message"]
        assert (await backend.operation(op_id))["status"] == "running"
        assert not list((tmp_path / "models").rglob("metadata.json"))
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path.parent / "escaped").exists()


async def test_a_result_without_a_model_completes_the_operation_with_none(tmp_path: Path) -> None:
    warning = (
        "no file under the output folder matched the artefact globs ['*.pt']; no model version was stored"
    )
    body = payload_bytes(
        build_payload(
            operation_id="",
            session_id="",
            result={**RESULT, "warnings": [warning]},
            artifact=None,
            model=None,
        )
    )
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _running(backend)
        body = body.replace(b'"operation_id":""', f'"operation_id":"{op_id}"'.encode())
        body = body.replace(b'"session_id":""', f'"session_id":"{session_id}"'.encode())
        first = await backend.post_result(body)
        second = await backend.post_result(body)
        assert (first.status_code, second.status_code) == (200, 200), second.text
        assert (first.json()["model"], second.json()["duplicate"]) == (None, True)
        op = await backend.operation(op_id)
        assert op["status"] == "completed"
        assert op["result"]["model"] is None
        assert op["result"]["warnings"] == [warning]
        assert not list((tmp_path / "models").rglob("metadata.json"))
