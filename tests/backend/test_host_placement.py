"""Placement, the lease, polling back-off and the execution-mode rules with hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector
from backend.domain.hosts import HostCensus, HostLease, HostState, choose_host, next_poll_interval
from backend.errors import ExecutionModeUnavailableError
from tests.backend.host_fakes import FakeHostClient
from tests.backend.host_harness import host_backend, host_settings


def _host(url: str, kind: str = "cpu", capacity: int = 1, in_use: int = 0, healthy: bool = True) -> HostState:
    return HostState(url=url, healthy=healthy, device_kind=kind, capacity=capacity, in_use=in_use)


def test_placement_prefers_a_gpu_host_with_a_free_slot() -> None:
    states = [_host("cpu-big", capacity=4), _host("gpu", "cuda"), _host("mps", "mps", in_use=1)]
    assert choose_host(states).url == "gpu"  # type: ignore[union-attr]


def test_placement_skips_unhealthy_full_reserved_and_excluded_hosts() -> None:
    states = [_host("down", "cuda", healthy=False), _host("full", "cuda", in_use=1), _host("a"), _host("b")]
    assert choose_host(states, reserved={"a": 1}).url == "b"  # type: ignore[union-attr]
    assert choose_host(states, reserved={"a": 1}, exclude=["b"]) is None


def test_placement_with_require_gpu_never_picks_a_cpu_host() -> None:
    assert choose_host([_host("cpu")], require_gpu=True) is None


def test_the_lease_expires_only_after_the_silence_outlasts_it() -> None:
    lease = HostLease(lease_s=30, last_contact=100.0)
    assert not lease.expired(130.0)
    assert lease.expired(130.1)
    lease.renew(129.0)
    assert not lease.expired(150.0)


def test_polling_backs_off_while_nothing_changes_and_resets_on_change() -> None:
    interval = 1.0
    seen = []
    for _ in range(6):
        interval = next_poll_interval(interval, initial=1.0, maximum=5.0, changed=False)
        seen.append(interval)
    assert seen == sorted(seen)
    assert seen[-1] == 5.0
    assert next_poll_interval(5.0, initial=1.0, maximum=5.0, changed=True) == 1.0


class Hosts:
    def __init__(self, up: bool, gpu: bool) -> None:
        self.up, self.gpu = up, gpu

    def is_available(self) -> bool:
        return self.up

    def has_gpu(self) -> bool:
        return self.gpu

    def census(self) -> HostCensus:
        up, gpu = int(self.up), int(self.up and self.gpu)
        return HostCensus(1, up, up, gpu, gpu)


def test_auto_with_a_gpu_required_goes_to_a_gpu_host() -> None:
    decision = ExecutionModeSelector(ExecutionMode.AUTO, Hosts(True, True)).select(None, require_gpu=True)
    assert decision.mode is ExecutionMode.HOST


def test_auto_with_a_gpu_required_and_only_cpu_hosts_is_refused_clearly() -> None:
    with pytest.raises(ExecutionModeUnavailableError, match="GPU is required"):
        ExecutionModeSelector(ExecutionMode.AUTO, Hosts(True, False)).select(None, require_gpu=True)


def test_host_mode_with_a_gpu_required_and_no_gpu_host_is_refused() -> None:
    with pytest.raises(ExecutionModeUnavailableError, match="require_gpu"):
        ExecutionModeSelector(ExecutionMode.LOCAL, Hosts(True, False)).select(ExecutionMode.HOST, True)


@pytest.mark.anyio
async def test_host_requested_with_no_healthy_host_runs_locally_with_the_reason_as_warning(
    tmp_path: Path,
) -> None:
    async with host_backend(host_settings(tmp_path), FakeHostClient(down={"http://h1"})) as backend:
        op_id = await backend.start_training()
        op = await backend.wait_status(op_id, "completed")
        assert op["execution_mode"] == "local"
        assert "no host service is healthy" in op["mode_reason"]
        assert any("fell back to local" in w for w in op["warnings"])


@pytest.mark.anyio
async def test_host_requested_with_require_gpu_and_no_host_is_503(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path), FakeHostClient(down={"http://h1"})) as backend:
        body = {"strategy": "trend", "symbol": "EURUSD", "timeframe": "1h"}
        response = await backend.client.post(
            "/api/v1/trainings", json={**body, "execution_mode": "host", "require_gpu": True}
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "execution_mode_unavailable"


@pytest.mark.anyio
async def test_auto_with_require_gpu_dispatches_to_the_gpu_host(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, hosts=("http://cpu-1", "http://gpu-1"), default_execution_mode="auto")
    async with host_backend(settings) as backend:
        op_id = await backend.start_training(execution_mode=None, require_gpu=True)
        op = await backend.wait_for(op_id, lambda b: b["host_url"] is not None, "a host")
        assert op["host_url"] == "http://gpu-1"


@pytest.mark.anyio
async def test_system_shows_hosts_and_the_default_mode_can_be_changed(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, hosts=("http://h1", "http://h2"))
    async with host_backend(settings, FakeHostClient(down={"http://h2"})) as backend:
        system = (await backend.client.get("/api/v1/system")).json()
        hosts = {h["url"]: h for h in system["hosts"]}
        assert hosts["http://h1"]["healthy"]
        assert hosts["http://h1"]["capacity"] == 1
        assert not hosts["http://h2"]["healthy"]
        assert "did not answer" in hosts["http://h2"]["error"]
        changed = await backend.client.put("/api/v1/system/execution-mode", json={"mode": "host"})
        assert changed.json() == {"default_execution_mode": "host"}
        op_id = await backend.start_training(execution_mode=None)
        assert (await backend.operation(op_id))["execution_mode"] == "host"
        bad = await backend.client.put("/api/v1/system/execution-mode", json={"mode": "cloud"})
        assert bad.status_code == 422
