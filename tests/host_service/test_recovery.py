"""A host restart loses no finished result: live sessions fail ``host_restarted``, results survive."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.contracts.host import ResultPayload
from tests.host_service.conftest import (
    FakeBackend,
    host_settings,
    run_host,
    start_body,
    wait_for,
    wait_status,
    write_fake_result,
)
from tests.host_service.fakes import FakeLauncher

pytestmark = pytest.mark.anyio


async def test_session_running_when_the_host_stopped_is_failed_host_restarted(tmp_path: Path) -> None:
    settings = host_settings(tmp_path)
    async for host in run_host(settings, FakeLauncher(obeys_terminate=True), FakeBackend()):
        session_id = (await host.client.post("/training/start", json=start_body())).json()["session_id"]
        await wait_status(host, session_id, "running")
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        view = await wait_status(host, session_id, "failed")
        assert view["error"]["code"] == "host_restarted"
        assert (await host.client.get("/health")).json()["sessions_in_use"] == 0


async def test_unacknowledged_result_is_served_and_sent_again_after_restart(tmp_path: Path) -> None:
    settings = host_settings(tmp_path)
    down = FakeBackend(callback_status=503)
    async for host in run_host(settings, FakeLauncher(), down):
        session_id = (await host.client.post("/training/start", json=start_body())).json()["session_id"]
        await wait_status(host, session_id, "running")
        host.launcher.workers[0].complete(write_fake_result(b"kept weights"))
        await wait_for(lambda: len(down.callbacks) == 2)  # both attempts failed
        assert (await wait_status(host, session_id, "completed"))["callback_delivered"] is False
    back = FakeBackend()
    async for host in run_host(settings, FakeLauncher(), back):
        await wait_for(lambda: len(back.callbacks) == 1)
        assert ResultPayload.model_validate_json(back.callbacks[0].content).session_id == session_id
        pulled = await host.client.get(f"/training/result/{session_id}")
        assert pulled.status_code == 200


async def test_result_finished_on_disk_while_host_was_down_is_recovered_as_completed(tmp_path: Path) -> None:
    settings = host_settings(tmp_path)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        session_id = (await host.client.post("/training/start", json=start_body())).json()["session_id"]
        await wait_status(host, session_id, "running")
        worker = host.launcher.workers[0]
        # The child wrote its result, but the host went down before it heard the news.
        write_fake_result()(worker.spec.result_dir)
    back = FakeBackend()
    async for host in run_host(settings, FakeLauncher(), back):
        view = await wait_status(host, session_id, "completed")
        assert view["result_available"] is True
        await wait_for(lambda: len(back.callbacks) == 1)


async def test_acknowledged_session_is_not_sent_again_after_restart(tmp_path: Path) -> None:
    settings = host_settings(tmp_path)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        session_id = (await host.client.post("/training/start", json=start_body())).json()["session_id"]
        await wait_status(host, session_id, "running")
        host.launcher.workers[0].complete(write_fake_result())
        await wait_status(host, session_id, "completed")
        assert (await host.client.post(f"/training/result/{session_id}/ack")).status_code == 200
    back = FakeBackend()
    async for host in run_host(settings, FakeLauncher(), back):
        view = await wait_status(host, session_id, "completed")
        assert view["result_acknowledged"] is True
        assert back.callbacks == []
