"""Hosts ship training checkpoints: signed over the query that names the body's sha256 and size, each
webhook-id once, size-capped (413), only for the operation running on the sending session (409), and
atomically (a cut, short or wrong body leaves the older checkpoint). A training lost with its host
resumes from the newest one: on another host (which is sent a signed download of it) or locally."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from backend.domain.checkpoints import ShippedCheckpoint
from backend.errors import CheckpointRejectedError
from backend.services.checkpoint_store import CheckpointStore
from shared.contracts.host import SessionStatusName
from shared.contracts.signing import sign_request
from tests.backend.fakes import FixedClock
from tests.backend.host_harness import SECRET, HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio

OLD, NEW = b"checkpoint of epoch 2 " * 50, b"checkpoint of epoch 3 " * 60


def _target(op_id: str, session_id: str, epoch: int, body: bytes, **announced: object) -> str:
    sha256 = announced.get("sha256", hashlib.sha256(body).hexdigest())
    size = announced.get("size", len(body))
    name = f"&name={quote(str(announced['name']))}" if "name" in announced else ""
    return (
        f"/api/v1/callbacks/checkpoints/{op_id}?session_id={session_id}&epoch={epoch}&sha256={sha256}"
        f"&size={size}{name}"
    )


async def _put(
    backend: HostBackend,
    target: str,
    content: bytes | AsyncIterator[bytes],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    signed = sign_request(SECRET, "PUT", target) if headers is None else headers
    return await backend.client.put(target, content=content, headers=signed)


async def _ship(backend: HostBackend, op_id: str, session_id: str, epoch: int, body: bytes) -> httpx.Response:
    return await _put(backend, _target(op_id, session_id, epoch, body), body)


async def _on_host(backend: HostBackend, **changes: object) -> tuple[str, str]:
    op_id = await backend.start_training(**changes)
    body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    return op_id, body["host_session_id"]


async def _history(backend: HostBackend, op_id: str) -> list[tuple[int, str]]:
    rows = (await backend.client.get(f"/api/v1/operations/{op_id}/metrics")).json()["history"]
    return [(row["epoch"], row["host"]) for row in rows]


async def _wait_history(backend: HostBackend, op_id: str, expected: list[tuple[int, str]]) -> None:
    deadline = time.monotonic() + 5
    while (seen := await _history(backend, op_id)) != expected:
        assert time.monotonic() < deadline, f"history {seen}, never {expected}"
        await asyncio.sleep(0.01)


def _kept(backend: HostBackend, op_id: str) -> list[Path]:
    return sorted(backend.components.checkpoints.folder(op_id).glob("*ckpt*"))


async def test_each_shipped_checkpoint_replaces_the_older_and_is_downloadable_signed(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        first = await _ship(backend, op_id, session_id, 2, OLD)
        assert first.status_code == 200, first.text
        second = await _ship(backend, op_id, session_id, 3, NEW)
        assert second.json() == {
            "operation_id": op_id,
            "epoch": 3,
            "sha256": hashlib.sha256(NEW).hexdigest(),
            "size": len(NEW),
            "name": "epoch-000003.ckpt",
        }
        assert [p.name for p in _kept(backend, op_id)] == ["epoch-000003.ckpt"]
        download = await backend.signed_get(f"/api/v1/callbacks/checkpoints/{op_id}")
        assert download.status_code == 200
        assert download.content == NEW
        assert download.headers["x-content-sha256"] == hashlib.sha256(NEW).hexdigest()
        unsigned = await backend.client.get(f"/api/v1/callbacks/checkpoints/{op_id}")
        assert unsigned.status_code == 401


async def test_a_command_checkpoint_is_kept_under_its_name_and_its_step_and_travels_with_a_redispatch(
    tmp_path: Path,
) -> None:
    settings = host_settings(tmp_path, hosts=("http://h1", "http://h2"), host_lease_s=0.3)
    async with host_backend(settings) as backend:
        op_id, first = await _on_host(backend, max_retries=1)
        for step, body in ((200, OLD), (400, NEW)):
            name = f"step-{step:09d}-checkpoint.pt"
            response = await _put(backend, _target(op_id, first, step, body, name=name), body)
            assert response.status_code == 200, response.text
            assert response.json()["name"] == name
        assert [p.name for p in backend.components.checkpoints.folder(op_id).glob("step-*")] == [
            "step-000000400-checkpoint.pt"
        ]
        backend.hosts.down.add(backend.hosts.by_id[first].host)
        op = await backend.wait_for(
            op_id, lambda b: b["host_session_id"] not in (None, first), "a re-dispatch", 5
        )
        ref = backend.hosts.by_id[op["host_session_id"]].command.resume_checkpoint
        assert ref is not None
        assert (ref.name, ref.epoch, ref.sha256) == (
            "step-000000400-checkpoint.pt",
            400,
            hashlib.sha256(NEW).hexdigest(),
        )


@pytest.mark.parametrize(
    ("name", "epoch"),
    [
        ("../epoch-000003.ckpt", 3),
        ("step-000000400-a/b.pt", 400),
        ("step-000000400-..%2Fx", 400),
        ("step-400-checkpoint.pt", 400),
        ("step-000000400-checkpoint.pt", 401),
        ("epoch-000003.ckpt", 4),
        ("shipped.json", 3),
    ],
)
async def test_a_checkpoint_name_other_than_the_two_forms_or_its_label_is_refused_naming_it(
    tmp_path: Path, name: str, epoch: int
) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        assert (await _ship(backend, op_id, session_id, 2, OLD)).status_code == 200
        response = await _put(backend, _target(op_id, session_id, epoch, NEW, name=name), NEW)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == "name"
        kept = backend.components.checkpoints.latest(op_id)
        assert kept is not None
        assert kept.path.name == "epoch-000002.ckpt"
        assert sorted(p.name for p in backend.components.checkpoints.folder(op_id).iterdir()) == [
            "epoch-000002.ckpt",
            "shipped.json",
        ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        sign_request("wrong-secret", "PUT", "/placeholder"),
        "signed for another digest",
        "signed as a GET",
    ],
    ids=["unsigned", "bad secret", "another digest", "another method"],
)
async def test_a_checkpoint_without_a_valid_signature_is_refused_and_nothing_changes(
    tmp_path: Path, headers: object
) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        assert (await _ship(backend, op_id, session_id, 2, OLD)).status_code == 200
        target = _target(op_id, session_id, 3, NEW)
        if headers == "signed for another digest":
            headers = sign_request(SECRET, "PUT", _target(op_id, session_id, 3, OLD))
        elif headers == "signed as a GET":
            headers = sign_request(SECRET, "GET", target)
        elif isinstance(headers, dict) and headers:
            headers = sign_request("wrong-secret", "PUT", target)
        assert isinstance(headers, dict)
        response = await _put(backend, target, NEW, headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad_signature"
        kept = backend.components.checkpoints.latest(op_id)
        assert kept is not None
        assert kept.epoch == 2
        assert kept.path.read_bytes() == OLD


async def test_a_replayed_checkpoint_upload_is_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        target = _target(op_id, session_id, 2, OLD)
        headers = sign_request(SECRET, "PUT", target)
        assert (await _put(backend, target, OLD, headers)).status_code == 200
        again = await _put(backend, target, OLD, headers)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "replayed"


async def test_a_checkpoint_over_the_cap_is_refused_with_413_whether_announced_or_streamed(
    tmp_path: Path,
) -> None:
    async with host_backend(host_settings(tmp_path, checkpoint_max_bytes=2048)) as backend:
        op_id, session_id = await _on_host(backend)
        assert (await _ship(backend, op_id, session_id, 2, OLD)).status_code == 200
        big = b"x" * 4096
        announced = await _ship(backend, op_id, session_id, 3, big)
        assert announced.status_code == 413
        assert "MODELYARD_CHECKPOINT_MAX_BYTES" in announced.json()["error"]["message"]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the cap bites while streaming
            for _ in range(4):
                yield big[:1024]

        target = _target(op_id, session_id, 3, big, size=1000)
        streamed = await _put(backend, target, chunked())
        assert streamed.status_code == 413
        kept = backend.components.checkpoints.latest(op_id)
        assert kept is not None
        assert kept.path.read_bytes() == OLD
        assert [p.name for p in _kept(backend, op_id)] == ["epoch-000002.ckpt"]


async def test_a_short_or_wrong_body_is_rejected_and_leaves_the_older_checkpoint(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        assert (await _ship(backend, op_id, session_id, 2, OLD)).status_code == 200
        short = await _put(backend, _target(op_id, session_id, 3, NEW), NEW[: len(NEW) // 2])
        assert short.status_code == 422
        assert short.json()["error"]["code"] == "checkpoint_rejected"
        assert "cut short" in short.json()["error"]["message"]
        forged = await _put(backend, _target(op_id, session_id, 3, NEW), OLD + NEW[len(OLD) :])
        assert forged.status_code == 422
        kept = backend.components.checkpoints.latest(op_id)
        assert kept is not None
        assert (kept.epoch, kept.path.read_bytes()) == (2, OLD)
        assert [p.name for p in _kept(backend, op_id)] == ["epoch-000002.ckpt"]


async def test_a_connection_cut_mid_upload_leaves_the_older_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "runs", max_bytes=1 << 20)
    now = FixedClock().now()

    async def once(body: bytes) -> AsyncIterator[bytes]:
        yield body

    old = ShippedCheckpoint("hs_1", 2, hashlib.sha256(OLD).hexdigest(), len(OLD))
    await store.receive("op_1", old, once(OLD), now)

    async def cut() -> AsyncIterator[bytes]:
        yield NEW[:100]
        raise ConnectionResetError("the host went away")

    new = ShippedCheckpoint("hs_1", 3, hashlib.sha256(NEW).hexdigest(), len(NEW))
    with pytest.raises(ConnectionResetError):
        await store.receive("op_1", new, cut(), now)
    kept = store.latest("op_1")
    assert kept is not None
    assert (kept.epoch, kept.path.read_bytes()) == (2, OLD)
    assert sorted(p.name for p in store.folder("op_1").iterdir()) == ["epoch-000002.ckpt", "shipped.json"]
    with pytest.raises(CheckpointRejectedError):
        await store.receive("op_1", new, once(NEW[:-1]), now)
    assert sorted(p.name for p in store.folder("op_1").iterdir()) == ["epoch-000002.ckpt", "shipped.json"]


async def test_a_checkpoint_for_an_operation_not_running_on_that_session_is_refused(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        other = await _ship(backend, op_id, "hs_someone_else", 2, OLD)
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "checkpoint_refused"
        unknown = await _ship(backend, "op_does_not_exist", session_id, 2, OLD)
        assert unknown.status_code == 404
        await backend.client.post(f"/api/v1/operations/{op_id}/cancel")
        await backend.wait_status(op_id, "cancelled")
        ended = await _ship(backend, op_id, session_id, 2, OLD)
        assert ended.status_code == 409
        assert backend.components.checkpoints.latest(op_id) is None


async def test_a_lost_training_resumes_on_another_host_from_the_newest_shipped_checkpoint(
    tmp_path: Path,
) -> None:
    settings = host_settings(tmp_path, hosts=("http://h1", "http://h2"), max_retries=0, host_lease_s=0.3)
    async with host_backend(settings) as backend:
        op_id, first = await _on_host(backend, max_retries=1)  # the request's own limit applies
        assert backend.hosts.by_id[first].command.resume_checkpoint is None
        assert (
            backend.hosts.by_id[first].command.checkpoint_url
            == f"http://testserver/api/v1/callbacks/checkpoints/{op_id}"
        )
        await _ship(backend, op_id, first, 2, OLD)
        await _ship(backend, op_id, first, 3, NEW)
        # Host A got to epoch 5 past its checkpoint of epoch 3; the backend saw epochs 1, 2, 4, 5.
        backend.hosts.by_id[first].recent_epochs = [{"epoch": n, "host": "a"} for n in (1, 2, 4, 5)]
        await _wait_history(backend, op_id, [(1, "a"), (2, "a"), (4, "a"), (5, "a")])
        lost = backend.hosts.by_id[first].host
        backend.hosts.down.add(lost)
        op = await backend.wait_for(
            op_id, lambda b: b["host_session_id"] not in (None, first), "a re-dispatch", 5
        )
        second = backend.hosts.by_id[op["host_session_id"]]
        ref = second.command.resume_checkpoint
        assert ref is not None
        assert (ref.epoch, ref.sha256, ref.size) == (3, hashlib.sha256(NEW).hexdigest(), len(NEW))
        download = await backend.signed_get(ref.url.removeprefix("http://testserver"))
        assert download.content == NEW
        # What host B says once its training restored the checkpoint: the epoch, and the epochs it
        # restored (the history of the checkpoint) before its own.
        second.resumed_from_epoch = 3
        second.recent_epochs = [{"epoch": n, "host": "b"} for n in (1, 2, 3, 4)]
        op = await backend.wait_for(
            op_id, lambda b: b["attempt_history"][-1]["resumed_from_epoch"] == 3, "the resume noted", 5
        )
        assert op["progress"]["message"] == f"retrying from epoch 3 on host {second.host}"
        # Each epoch once, no gap: A's epochs up to the checkpoint, the one it missed, B's after it.
        assert await _history(backend, op_id) == [(1, "a"), (2, "a"), (3, "b"), (4, "b")]
        assert [(a["outcome"], a["where"], a["trigger"]) for a in op["attempt_history"]] == [
            ("requeued", f"host {lost}", None),
            ("running", f"host {second.host}", "automatic"),
        ]
        assert op["attempt_history"][0]["error"]["code"] == "host_lost"
        assert any("retry 1 of 1 (max_retries)" in w for w in op["warnings"])


async def test_a_requests_max_retries_of_zero_fails_a_lost_host_training_despite_the_server_setting(
    tmp_path: Path,
) -> None:
    settings = host_settings(tmp_path, hosts=("http://h1", "http://h2"), max_retries=2, host_lease_s=0.3)
    async with host_backend(settings) as backend:
        op_id, first = await _on_host(backend, max_retries=0)
        backend.hosts.down.add(backend.hosts.by_id[first].host)
        op = await backend.wait_status(op_id, "failed", deadline_s=5)
        assert op["error"]["code"] == "host_lost"
        assert len(op["attempt_history"]) == 1


async def test_a_lost_training_falling_back_to_local_resumes_from_the_shipped_checkpoint(
    tmp_path: Path,
) -> None:
    async with host_backend(host_settings(tmp_path, max_retries=1, host_lease_s=0.3)) as backend:
        op_id, session_id = await _on_host(backend)
        await _ship(backend, op_id, session_id, 3, NEW)
        backend.hosts.down.add("http://h1")
        op = await backend.wait_status(op_id, "completed", deadline_s=5)
        assert op["execution_mode"] == "local"
        assert backend.engine.runs == [op_id]
        assert backend.engine.resumed == [True]
        # The local run folder is where the shipped checkpoint was kept: the executor resumes from it.
        assert (tmp_path / "runs" / op_id / "checkpoints" / "epoch-000003.ckpt").read_bytes() == NEW
        assert backend.hosts.by_id[session_id].status is SessionStatusName.RUNNING  # its host is gone
