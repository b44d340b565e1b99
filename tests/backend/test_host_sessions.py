"""HostSessionManager against a scripted host: dispatch, mirroring, pull, lease, retries, cancel, restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from shared.contracts.host import SessionError, SessionStatusName
from shared.contracts.training import ProgressUpdate
from tests.backend.host_fakes import FakeHostClient, result_payload, tiny_model
from tests.backend.host_harness import HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio


async def _on_host(backend: HostBackend, **changes: object) -> tuple[str, str]:
    op_id = await backend.start_training(**changes)
    body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    return op_id, body["host_session_id"]


def _finish(hosts: FakeHostClient, session_id: str, tmp_path: Path) -> bytes:
    model, config = tiny_model()
    path = tmp_path / f"{session_id}.pt"
    path.write_bytes(model)
    session = hosts.by_id[session_id]
    body = result_payload(session.command.operation_id, session_id, path, config)
    hosts.results[session_id] = body
    session.status = SessionStatusName.COMPLETED
    return model


async def test_dispatch_sends_the_operation_id_data_refs_and_callback_and_records_the_session(
    tmp_path: Path,
) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        command = backend.hosts.by_id[session_id].command
        assert command.operation_id == op_id
        assert command.callback_url == "http://testserver/api/v1/callbacks/host-result"
        [ref] = command.datasets
        assert ref.filename == "EURUSD_1h.csv"
        assert ref.url == "http://testserver/api/v1/data/EURUSD/1h/download"
        download = await backend.signed_get("/api/v1/data/EURUSD/1h/download")
        assert download.headers["X-Content-SHA256"] == ref.sha256
        op = await backend.operation(op_id)
        assert (op["execution_mode"], op["host_url"], op["attempts"]) == ("host", "http://h1", 1)
        assert op["mode_reason"] == "requested host; a host is available"
        stored = backend.components.operations.get(op_id)
        assert stored.host_session_id == session_id  # persisted, not only live
        logs = (await backend.client.get(f"/api/v1/operations/{op_id}/logs")).json()["lines"]
        assert any("execution mode host" in line["message"] for line in logs)


async def test_progress_device_and_heartbeat_are_mirrored_into_the_operation(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        backend.hosts.by_id[session_id].progress = ProgressUpdate(
            percentage=42.0, phase="training", epoch=1, total_epochs=2
        )
        op = await backend.wait_for(op_id, lambda b: b["progress"]["percentage"] == 42.0, "progress 42")
        assert op["progress"]["phase"] == "training"
        assert op["device"] == "cpu"
        assert op["last_heartbeat"] is not None


async def test_without_a_callback_the_result_is_pulled_stored_once_and_acknowledged(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, host_result_pull_delay_s=0.05)) as backend:
        op_id, session_id = await _on_host(backend)
        model = _finish(backend.hosts, session_id, tmp_path)
        op = await backend.wait_status(op_id, "completed")
        assert (Path(op["result"]["model"]["path"]) / "model.pt").read_bytes() == model
        assert backend.versions() == [1]
        assert backend.hosts.count("result") == 1
        await backend.wait_for(op_id, lambda _: backend.hosts.by_id[session_id].acked, "an ack")


async def test_callback_and_pull_together_give_one_model_version(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, host_result_pull_delay_s=0.0)) as backend:
        op_id, session_id = await _on_host(backend)
        _finish(backend.hosts, session_id, tmp_path)
        body = backend.hosts.results[session_id]
        responses = await asyncio.gather(*(backend.post_result(body) for _ in range(3)))
        assert all(r.status_code == 200 for r in responses)
        await backend.wait_status(op_id, "completed")
        # Once the host has its ack the follower is done with the session: no later pull can store more.
        await backend.wait_for(op_id, lambda _: backend.hosts.by_id[session_id].acked, "an ack")
        assert backend.versions() == [1]


async def test_a_silent_host_fails_the_operation_host_lost_within_the_lease(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, host_lease_s=0.3)) as backend:
        op_id, _ = await _on_host(backend)
        backend.hosts.down.add("http://h1")
        op = await backend.wait_status(op_id, "failed", deadline_s=5)
        assert op["error"]["code"] == "host_lost"
        assert "lease" in op["error"]["message"]


async def test_with_retries_a_lost_training_moves_to_another_healthy_host(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, hosts=("http://h1", "http://h2"), max_retries=1, host_lease_s=0.3)
    async with host_backend(settings) as backend:
        op_id, first = await _on_host(backend)
        lost = backend.hosts.by_id[first].host
        backend.hosts.down.add(lost)
        op = await backend.wait_for(
            op_id, lambda b: b["host_session_id"] not in (None, first), "a second session", 5
        )
        assert op["host_url"] != lost
        assert op["attempts"] == 2
        assert any("re-dispatched" in w for w in op["warnings"])
        _finish(backend.hosts, op["host_session_id"], tmp_path)
        await backend.post_result(backend.hosts.results[op["host_session_id"]])
        assert (await backend.wait_status(op_id, "completed"))["execution_mode"] == "host"


async def test_with_retries_and_no_other_host_a_lost_training_runs_locally(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, max_retries=1, host_lease_s=0.3)) as backend:
        op_id, _ = await _on_host(backend)
        backend.hosts.down.add("http://h1")
        op = await backend.wait_status(op_id, "completed", deadline_s=5)
        assert op["execution_mode"] == "local"
        assert any("fell back to local" in w for w in op["warnings"])


async def test_an_infrastructure_failure_on_the_host_is_retried_a_training_error_is_not(
    tmp_path: Path,
) -> None:
    async with host_backend(host_settings(tmp_path, max_retries=1)) as backend:
        op_id, session_id = await _on_host(backend)
        session = backend.hosts.by_id[session_id]
        session.status = SessionStatusName.FAILED
        session.error = SessionError(code="invalid_data", message="column close is empty")
        op = await backend.wait_status(op_id, "failed")
        assert op["error"]["code"] == "invalid_data"
        assert op["attempts"] == 1


async def test_cancel_reaches_the_host_and_ends_cancelled_when_it_confirms(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _on_host(backend)
        response = await backend.client.post(f"/api/v1/operations/{op_id}/cancel")
        assert response.json()["status"] == "cancelling"
        await backend.wait_status(op_id, "cancelled")
        assert backend.hosts.count("stop") >= 1
        assert backend.hosts.by_id[session_id].status is SessionStatusName.CANCELLED


async def test_a_cancel_the_host_never_confirms_ends_cancelled_after_the_grace_period(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, cancel_grace_s=0.2)) as backend:
        op_id, session_id = await _on_host(backend)
        backend.hosts.by_id[session_id].obeys_stop = False
        await backend.client.post(f"/api/v1/operations/{op_id}/cancel")
        await backend.wait_status(op_id, "cancelled", deadline_s=5)
        assert backend.hosts.count("stop") >= 2  # asked, then asked again when the grace ran out


async def test_two_hosts_of_one_slot_never_share_a_slot_and_the_third_training_waits(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, hosts=("http://h1", "http://h2"))) as backend:
        ops = [await backend.start_training() for _ in range(3)]
        await backend.wait_for(ops[1], lambda b: b["host_session_id"] is not None, "a session", 5)
        # The dispatcher holds the third one: it found both slots taken and waits for one to free up.
        deadline = time.monotonic() + 5
        while ops[2] not in backend.components.hosts.dispatching:
            assert time.monotonic() < deadline, "the third training never reached the dispatcher"
            await asyncio.sleep(0.01)
        third = await backend.operation(ops[2])
        assert third["status"] == "pending"
        live = [s.host for s in backend.hosts.by_id.values() if s.status is SessionStatusName.RUNNING]
        assert sorted(live) == ["http://h1", "http://h2"]
        first_session = (await backend.operation(ops[0]))["host_session_id"]
        _finish(backend.hosts, first_session, tmp_path)
        await backend.post_result(backend.hosts.results[first_session])
        after = await backend.wait_for(ops[2], lambda b: b["host_session_id"] is not None, "a free slot", 5)
        assert after["host_url"] == backend.hosts.by_id[first_session].host


async def test_after_a_restart_the_backend_re_attaches_to_a_running_host_session(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, host_result_pull_delay_s=0.05)
    hosts = FakeHostClient()
    async with host_backend(settings, hosts) as backend:
        op_id, session_id = await _on_host(backend)
    async with host_backend(settings, hosts) as backend:
        assert (await backend.operation(op_id))["status"] == "running"
        _finish(hosts, session_id, tmp_path)
        op = await backend.wait_status(op_id, "completed")
        assert op["host_session_id"] == session_id
        assert backend.versions() == [1]


async def test_a_stored_result_frees_the_hosts_slot_at_once_not_at_the_next_poll(tmp_path: Path) -> None:
    """Polls and health checks 30 s apart: the second training gets the one slot within seconds only
    because completing the first wakes its follower, which releases the slot."""
    slow = {"host_poll_initial_s": 30.0, "host_poll_max_s": 30.0, "host_health_interval_s": 30.0}
    async with host_backend(host_settings(tmp_path, host_lease_s=120.0, **slow)) as backend:
        first, session_id = await _on_host(backend)
        second = await backend.start_training()
        deadline = time.monotonic() + 5
        while second not in backend.components.hosts.dispatching:
            assert time.monotonic() < deadline, "the second training never reached the dispatcher"
            await asyncio.sleep(0.01)
        _finish(backend.hosts, session_id, tmp_path)
        assert (await backend.post_result(backend.hosts.results[session_id])).status_code == 200
        await backend.wait_status(first, "completed")
        placed = await backend.wait_for(second, lambda b: b["host_session_id"] is not None, "the slot", 5)
        assert placed["host_url"] == "http://h1"
