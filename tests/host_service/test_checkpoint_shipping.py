"""A host training's checkpoints go to the backend: each new newest one once, signed over the query that
names its sha256 and size; a resumed session first gets its checkpoint from the backend (checked like
data), trains with ``resume``, never ships that one back, and its status says which epoch it resumed from."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from shared.contracts.signing import verify_request
from tests.host_service.conftest import (
    SECRET,
    FakeBackend,
    Host,
    host_settings,
    run_host,
    start_body,
    status_of,
    wait_for,
    wait_status,
)
from tests.host_service.fakes import FakeLauncher

pytestmark = pytest.mark.anyio

CKPT_URL = "http://backend.test/api/v1/callbacks/checkpoints/op_1"
KEPT = b"the backend's checkpoint of epoch 3" * 20


@dataclass
class CheckpointBackend(FakeBackend):
    """Also serves the kept checkpoint and takes uploads, checking their signature as the backend does."""

    uploads: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    upload_status: int = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.copy_with(query=None) != httpx.URL(CKPT_URL):
            return super().__call__(request)
        if request.method == "GET":
            return httpx.Response(200, content=KEPT)
        verify_request([SECRET], dict(request.headers), "PUT", request.url.raw_path.decode(), b"")
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        assert request.headers["content-length"] == query["size"]
        self.uploads.append((query, request.content))
        return httpx.Response(self.upload_status, json={})


@pytest.fixture
async def shipping_host(tmp_path: Path) -> AsyncIterator[Host]:
    settings = host_settings(tmp_path, checkpoint_poll_s=0.02, checkpoint_min_interval_s=0)
    async for running in run_host(settings, FakeLauncher(), CheckpointBackend()):
        yield running


def _body(**changes: Any) -> dict[str, Any]:
    return {**start_body(), "checkpoint_url": CKPT_URL, **changes}


async def _started(host: Host, body: dict[str, Any]) -> tuple[str, Path]:
    response = await host.client.post("/training/start", json=body)
    assert response.status_code == 202, response.text
    session_id = response.json()["session_id"]
    await wait_for(lambda: host.launcher.workers)
    folder = host.launcher.workers[0].spec.checkpoint_dir
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    return session_id, folder


def _uploads(host: Host) -> list[tuple[dict[str, str], bytes]]:
    backend = host.backend
    assert isinstance(backend, CheckpointBackend)
    return backend.uploads


async def test_each_new_checkpoint_is_shipped_once_signed_with_its_digest(shipping_host: Host) -> None:
    session_id, folder = await _started(shipping_host, _body())
    assert not shipping_host.launcher.workers[0].spec.resume
    first = b"weights after epoch 1" * 30
    (folder / "epoch-000001.ckpt").write_bytes(first)
    await wait_for(lambda: len(_uploads(shipping_host)) == 1)
    query, body = _uploads(shipping_host)[0]
    assert body == first
    assert query == {
        "session_id": session_id,
        "epoch": "1",
        "sha256": hashlib.sha256(first).hexdigest(),
        "size": str(len(first)),
        "name": "epoch-000001.ckpt",
    }
    (folder / "epoch-000002.ckpt").write_bytes(b"weights after epoch 2")
    (folder / "not-a-checkpoint.tmp").write_bytes(b"half written")
    await wait_for(lambda: len(_uploads(shipping_host)) == 2)
    assert _uploads(shipping_host)[1][0]["epoch"] == "2"
    (folder / "epoch-000003.ckpt").write_bytes(b"weights after epoch 3")
    await wait_for(lambda: len(_uploads(shipping_host)) == 3)
    assert [q["epoch"] for q, _ in _uploads(shipping_host)] == ["1", "2", "3"]


async def test_a_resumed_session_trains_from_the_backends_checkpoint_and_never_ships_it_back(
    shipping_host: Host,
) -> None:
    ref = {"url": CKPT_URL, "epoch": 3, "sha256": hashlib.sha256(KEPT).hexdigest(), "size": len(KEPT)}
    session_id, folder = await _started(shipping_host, _body(resume_checkpoint=ref))
    worker = shipping_host.launcher.workers[0]
    assert worker.spec.resume
    assert (folder / "epoch-000003.ckpt").read_bytes() == KEPT  # in place before the child started
    restored = [{"epoch": n, "train_loss": 1.0 / n} for n in (1, 2, 3)]
    worker.send(
        "progress",
        phase="training",
        percentage=30.0,
        extra={"resumed_from_epoch": 3, "resumed_history": restored},
    )
    assert (await wait_status(shipping_host, session_id, "running"))["status"] == "running"
    await wait_for(lambda: shipping_host.launcher.workers[0].pending == [])
    row = {"epoch": 4, "train_loss": 0.2}
    worker.send("progress", phase="training", percentage=40.0, epoch=4, extra={"epoch_metrics": row})
    (folder / "epoch-000004.ckpt").write_bytes(b"weights after epoch 4")
    await wait_for(lambda: _uploads(shipping_host))
    assert [q["epoch"] for q, _ in _uploads(shipping_host)] == ["4"]
    view = await status_of(shipping_host, session_id)
    assert view["resumed_from_epoch"] == 3  # said once, kept
    # The restored epochs are the recent ones before its own: the backend may have missed the last.
    assert view["recent_epochs"] == [*restored, row]


async def test_a_resume_checkpoint_that_does_not_match_its_digest_fails_the_session(
    shipping_host: Host,
) -> None:
    ref = {"url": CKPT_URL, "epoch": 3, "sha256": "0" * 64, "size": len(KEPT)}
    response = await shipping_host.client.post("/training/start", json=_body(resume_checkpoint=ref))
    view = await wait_status(shipping_host, response.json()["session_id"], "failed")
    assert view["error"]["code"] == "dataset_unavailable"
    assert not shipping_host.launcher.workers


async def test_a_refused_checkpoint_is_not_sent_again_a_newer_one_is(shipping_host: Host) -> None:
    backend = shipping_host.backend
    assert isinstance(backend, CheckpointBackend)
    backend.upload_status = 409
    _, folder = await _started(shipping_host, _body())
    (folder / "epoch-000001.ckpt").write_bytes(b"weights after epoch 1")
    await wait_for(lambda: len(backend.uploads) == 1)
    backend.upload_status = 200
    (folder / "epoch-000002.ckpt").write_bytes(b"weights after epoch 2")
    await wait_for(lambda: len(backend.uploads) == 2)
    assert [q["epoch"] for q, _ in backend.uploads] == ["1", "2"]


async def test_a_commands_kept_checkpoints_are_shipped_under_their_name_labelled_with_their_step(
    shipping_host: Host,
) -> None:
    _, folder = await _started(shipping_host, _body())
    (folder / "step-000000200-checkpoint.pt").write_bytes(b"step 200")
    await wait_for(lambda: len(_uploads(shipping_host)) == 1)
    (folder / ".step-000000400-checkpoint.pt.partial").write_bytes(b"half a copy")
    (folder / "step-000000400-checkpoint.pt").write_bytes(b"step 400")
    await wait_for(lambda: len(_uploads(shipping_host)) == 2)
    assert [(q["name"], q["epoch"], body) for q, body in _uploads(shipping_host)] == [
        ("step-000000200-checkpoint.pt", "200", b"step 200"),
        ("step-000000400-checkpoint.pt", "400", b"step 400"),
    ]


async def test_a_resumed_command_session_gets_its_checkpoint_under_its_name_and_never_ships_it_back(
    shipping_host: Host,
) -> None:
    name = "step-000000400-checkpoint.pt"
    ref = {"url": CKPT_URL, "epoch": 400, "sha256": hashlib.sha256(KEPT).hexdigest(), "size": len(KEPT)}
    _, folder = await _started(shipping_host, _body(resume_checkpoint={**ref, "name": name}))
    assert shipping_host.launcher.workers[0].spec.resume
    assert (folder / name).read_bytes() == KEPT
    (folder / "step-000000600-checkpoint.pt").write_bytes(b"step 600")
    await wait_for(lambda: _uploads(shipping_host))
    assert [q["name"] for q, _ in _uploads(shipping_host)] == ["step-000000600-checkpoint.pt"]


@pytest.mark.parametrize("name", ["../step-000000400-x.pt", "step-000000400-a/b.pt", "step-000000401-x.pt"])
async def test_a_resume_checkpoint_with_a_bad_name_is_refused_at_start(
    shipping_host: Host, name: str
) -> None:
    ref = {"url": CKPT_URL, "epoch": 400, "sha256": hashlib.sha256(KEPT).hexdigest(), "size": 1, "name": name}
    response = await shipping_host.client.post("/training/start", json=_body(resume_checkpoint=ref))
    assert response.status_code == 422, response.text
    assert not shipping_host.launcher.workers
