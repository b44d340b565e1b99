"""The host API in-process with a fake worker launcher and a MockTransport backend."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from pathlib import Path

import httpx
import pytest

from host_service.domain.ports import WorkerMessage, WorkerSpec
from shared.contracts.handoff import decode_inline_model
from shared.contracts.host import MODEL_SHA256_HEADER, ResultPayload
from shared.contracts.signing import sign_request, verify, verify_request
from tests.host_service.conftest import (
    CSV,
    CSV_SHA,
    SECRET,
    FakeBackend,
    Host,
    host_settings,
    run_host,
    start_body,
    wait_for,
    wait_status,
    write_fake_result,
)
from tests.host_service.fakes import FakeLauncher, FakeWorker

pytestmark = pytest.mark.anyio


async def _start(host: Host, operation_id: str = "op_1", epochs: int = 2) -> str:
    response = await host.client.post("/training/start", json=start_body(operation_id, epochs))
    assert response.status_code == 202, response.text
    session_id: str = response.json()["session_id"]
    await wait_status(host, session_id, "running")
    return session_id


async def _in_use(host: Host) -> int:
    count: int = (await host.client.get("/health")).json()["sessions_in_use"]
    return count


async def test_unsigned_request_is_rejected_before_parsing(host: Host) -> None:
    async with httpx.AsyncClient(transport=host.client._transport, base_url="http://host.test") as raw:
        response = await raw.post("/training/start", content=b"{not json")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "bad_signature",
        "message": "missing header webhook-id",
        "details": {},
    }


async def test_request_signed_with_another_secret_or_tampered_is_rejected(host: Host) -> None:
    body = json.dumps(start_body()).encode()
    async with httpx.AsyncClient(transport=host.client._transport, base_url="http://host.test") as raw:
        path = "/training/start"
        wrong = await raw.post(path, content=body, headers=sign_request("other", "POST", path, body))
        tampered = await raw.post(path, content=body + b" ", headers=sign_request(SECRET, "POST", path, body))
        stale = await raw.post(
            path, content=body, headers=sign_request(SECRET, "POST", path, body, timestamp=1_000)
        )
    assert [wrong.status_code, tampered.status_code, stale.status_code] == [401, 401, 401]
    assert "stale" in stale.json()["error"]["message"]
    assert host.launcher.workers == []


async def test_health_reports_device_capacity_and_slots(host: Host) -> None:
    health = (await host.client.get("/health")).json()
    assert health["device"] == {"kind": "cpu", "name": "test-cpu", "memory_bytes": 1}
    assert (health["capacity"], health["sessions_in_use"], health["signing_required"]) == (1, 0, True)
    await _start(host)
    assert await _in_use(host) == 1


async def test_start_downloads_verifies_and_links_the_data_for_the_child(host: Host) -> None:
    await _start(host)
    spec = host.launcher.workers[0].spec
    assert (spec.data_dir / "EURUSD_1h.csv").read_bytes() == CSV
    assert (host.settings.work_dir / "cache" / CSV_SHA).read_bytes() == CSV
    download = host.backend.downloads[0]
    target = download.url.raw_path.decode()
    verify_request([SECRET], dict(download.headers), "GET", target, b"")
    assert spec.request["overrides"]["epochs"] == 2


async def test_cached_dataset_is_not_downloaded_twice(host: Host) -> None:
    first = await _start(host, "op_1")
    host.launcher.workers[0].complete(write_fake_result())
    await wait_status(host, first, "completed")
    await _start(host, "op_2")
    assert len(host.backend.downloads) == 1


async def test_dataset_with_wrong_sha256_fails_the_session(host: Host) -> None:
    body = start_body()
    body["datasets"][0]["sha256"] = "f" * 64
    session_id = (await host.client.post("/training/start", json=body)).json()["session_id"]
    view = await wait_status(host, session_id, "failed")
    assert view["error"]["code"] == "dataset_unavailable"
    assert "sha256" in view["error"]["message"]
    assert host.launcher.workers == []
    assert await _in_use(host) == 0


async def test_progress_heartbeat_and_device_reach_the_status(host: Host) -> None:
    session_id = await _start(host)
    worker = host.launcher.workers[0]
    worker.send("heartbeat", device="cpu")
    worker.send("progress", percentage=40.0, phase="training", message="Epoch 1/2", epoch=1, total_epochs=2)
    for _ in range(500):
        view = (await host.client.get(f"/training/status/{session_id}")).json()
        if view["progress"] and view["device"]:
            break
        await asyncio.sleep(0.01)
    assert view["progress"]["percentage"] == 40.0
    assert view["device"] == "cpu"
    assert view["last_heartbeat"] is not None
    assert view["worker_pid"] == 4242


async def test_same_operation_and_request_is_idempotent_another_request_conflicts(host: Host) -> None:
    session_id = await _start(host)
    again = await host.client.post("/training/start", json=start_body())
    assert (again.status_code, again.json()["session_id"]) == (202, session_id)
    other = await host.client.post("/training/start", json=start_body(epochs=9))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "session_conflict"
    assert len(host.launcher.workers) == 1


async def test_start_at_capacity_is_503_with_retry_after(host: Host) -> None:
    await _start(host, "op_1")
    refused = await host.client.post("/training/start", json=start_body("op_2"))
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "3"
    assert refused.json()["error"]["code"] == "host_at_capacity"


async def test_two_concurrent_starts_at_capacity_one_exactly_one_wins(host: Host) -> None:
    responses = await asyncio.gather(
        host.client.post("/training/start", json=start_body("op_a")),
        host.client.post("/training/start", json=start_body("op_b")),
    )
    assert sorted(r.status_code for r in responses) == [202, 503]
    await wait_for(lambda: len(host.launcher.workers) == 1)
    assert await _in_use(host) == 1


async def test_completed_result_is_called_back_signed_and_decodes_to_the_model(host: Host) -> None:
    session_id = await _start(host)
    model = b"\x00\x01weights" * 5000
    host.launcher.workers[0].complete(write_fake_result(model))
    view = await wait_status(host, session_id, "completed")
    assert view["result_available"] is True
    callback = await wait_for(lambda: host.backend.callbacks and host.backend.callbacks[0])
    verify([SECRET], dict(callback.headers), callback.content)
    payload = ResultPayload.model_validate_json(callback.content)
    assert (payload.operation_id, payload.session_id) == ("op_1", session_id)
    assert payload.artifact.metrics == {"accuracy": 0.5}
    assert decode_inline_model(payload.model.model_dump(), max_size=10**6) == model
    assert (await wait_status(host, session_id, "completed"))["callback_delivered"] is True
    assert await _in_use(host) == 0


async def test_a_reported_result_is_sent_and_the_slot_freed_while_the_child_still_exits(
    tmp_path: Path,
) -> None:
    """The child wrote its result and said so: nobody waits for its interpreter to tear down, and it
    gets its grace to exit by itself (no terminate meanwhile)."""
    launcher, backend = FakeLauncher(), FakeBackend()
    async for host in run_host(host_settings(tmp_path, stop_grace_s=60.0), launcher, backend):
        session_id = await _start(host)
        worker = launcher.workers[0]
        write_fake_result()(worker.spec.result_dir)
        worker.send("completed", device="cpu")  # and it keeps running for now
        view = await wait_status(host, session_id, "completed")
        assert view["result_available"] is True
        await wait_for(lambda: backend.callbacks)
        assert await _in_use(host) == 0
        assert worker.is_alive()
        await _start(host, "op_2")  # the freed slot takes the next training at once
        assert worker.calls == []  # given its grace to exit by itself
        worker.exit(0)
        assert (await wait_status(host, session_id, "completed"))["callback_delivered"] is True


async def test_result_can_be_pulled_and_is_deleted_after_ack(host: Host) -> None:
    session_id = await _start(host)
    host.launcher.workers[0].complete(write_fake_result())
    await wait_status(host, session_id, "completed")
    pulled = await host.client.get(f"/training/result/{session_id}")
    assert pulled.status_code == 200
    assert ResultPayload.model_validate_json(pulled.content).session_id == session_id
    ack = await host.client.post(f"/training/result/{session_id}/ack")
    assert ack.json()["result_acknowledged"] is True
    assert not (host.settings.work_dir / "sessions" / session_id / "result").exists()
    gone = await host.client.get(f"/training/result/{session_id}")
    assert gone.status_code == 409
    assert "acknowledged" in gone.json()["error"]["message"]
    assert (await host.client.post(f"/training/result/{session_id}/ack")).status_code == 200


async def test_result_of_a_running_session_is_not_available(host: Host) -> None:
    session_id = await _start(host)
    response = await host.client.get(f"/training/result/{session_id}")
    assert response.status_code == 409
    assert (await host.client.post(f"/training/result/{session_id}/ack")).status_code == 409


async def test_stop_cancels_gracefully_and_frees_the_slot(host: Host) -> None:
    session_id = await _start(host)
    stopping = await host.client.post(f"/training/stop/{session_id}")
    assert stopping.json()["status"] in ("stopping", "cancelled")
    view = await wait_status(host, session_id, "cancelled")
    assert view["error"]["code"] == "cancelled"
    assert host.launcher.workers[0].calls == ["cancel"]
    assert await _in_use(host) == 0
    await _start(host, "op_2")


async def test_stop_escalates_to_terminate_then_kill_and_still_frees_the_slot(tmp_path: Path) -> None:
    launcher = FakeLauncher(obeys_cancel=False, obeys_terminate=False)
    async for host in run_host(host_settings(tmp_path), launcher, FakeBackend()):
        session_id = await _start(host)
        await host.client.post(f"/training/stop/{session_id}")
        view = await wait_status(host, session_id, "cancelled")
        calls = launcher.workers[0].calls
        assert calls[0] == "cancel"
        assert calls.index("terminate") < calls.index("kill")
        assert view["error"]["details"] == {"exit_code": -9}
        assert await _in_use(host) == 0


async def test_worker_dying_without_a_result_is_worker_crashed(host: Host) -> None:
    session_id = await _start(host)
    host.launcher.workers[0].exit(-9)
    view = await wait_status(host, session_id, "failed")
    assert view["error"]["code"] == "worker_crashed"
    assert view["error"]["details"] == {"exit_code": -9}
    assert await _in_use(host) == 0


async def test_training_error_reported_by_the_worker_fails_the_session(host: Host) -> None:
    session_id = await _start(host)
    worker = host.launcher.workers[0]
    worker.pending.append(WorkerMessage("failed", {"code": "invalid_data", "message": "EURUSD_1h.csv row 3"}))
    worker.exit(0)
    view = await wait_status(host, session_id, "failed")
    assert view["error"]["code"] == "invalid_data"


async def test_unknown_session_is_404(host: Host) -> None:
    response = await host.client.get("/training/status/hs_nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"


async def test_large_model_is_referenced_and_streamed_raw_with_its_sha256(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, inline_model_limit_bytes=1000)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        session_id = await _start(host)
        model = bytes(range(256)) * 40
        host.launcher.workers[0].complete(write_fake_result(model))
        await wait_status(host, session_id, "completed")
        payload = ResultPayload.model_validate_json(
            (await host.client.get(f"/training/result/{session_id}")).content
        )
        assert payload.model.encoding == "external"
        assert payload.model.url == f"/training/result/{session_id}/model"
        raw = await host.client.get(payload.model.url)
        assert raw.content == model
        assert raw.headers[MODEL_SHA256_HEADER] == hashlib.sha256(model).hexdigest() == payload.model.sha256


async def test_list_shows_every_session(host: Host) -> None:
    session_id = await _start(host)
    items = (await host.client.get("/training/sessions")).json()["items"]
    assert [item["session_id"] for item in items] == [session_id]


async def test_oversized_request_body_is_413(tmp_path: Path) -> None:
    async for host in run_host(
        host_settings(tmp_path, max_request_bytes=2048), FakeLauncher(), FakeBackend()
    ):
        body = start_body()
        body["request"]["strategy_yaml"] = "x" * 5000
        response = await host.client.post("/training/start", json=body)
        assert response.status_code == 413


class StalledBackend(FakeBackend):
    """A backend whose data download never finishes (until the test is over)."""

    async def __call__(self, request: httpx.Request) -> httpx.Response:  # type: ignore[override]
        self.downloads.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_stop_while_downloading_data_cancels_without_starting_a_worker(tmp_path: Path) -> None:
    backend = StalledBackend()
    async for host in run_host(host_settings(tmp_path), FakeLauncher(), backend):
        session_id = (await host.client.post("/training/start", json=start_body())).json()["session_id"]
        await wait_for(lambda: backend.downloads)
        assert (await host.client.get(f"/training/status/{session_id}")).json()["status"] == "starting"
        await host.client.post(f"/training/stop/{session_id}")
        view = await wait_status(host, session_id, "cancelled")
        assert view["error"]["message"] == "stopped before training"
        assert host.launcher.workers == []
        assert await _in_use(host) == 0


class GatedLauncher(FakeLauncher):
    """Launches only once ``gate`` is set (a fork that takes its time); ``launching`` says it began."""

    def __init__(self) -> None:
        super().__init__()
        self.launching = threading.Event()
        self.gate = threading.Event()

    def launch(self, spec: WorkerSpec) -> FakeWorker:
        self.launching.set()
        assert self.gate.wait(10)
        return super().launch(spec)


async def test_a_stop_while_the_child_is_being_launched_reaps_the_child(tmp_path: Path) -> None:
    launcher = GatedLauncher()
    async for host in run_host(host_settings(tmp_path), launcher, FakeBackend()):
        session_id = (await host.client.post("/training/start", json=start_body())).json()["session_id"]
        await wait_for(launcher.launching.is_set)
        await host.client.post(f"/training/stop/{session_id}")
        launcher.gate.set()  # the launch finishes after the stop cancelled the session's task
        view = await wait_status(host, session_id, "cancelled")
        assert view["error"]["code"] == "cancelled"
        await wait_for(lambda: launcher.workers and not launcher.workers[0].is_alive())
        assert launcher.workers[0].calls == ["terminate"]
