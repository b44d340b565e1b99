"""Every fallback warning and 503 of the execution-mode choice says exactly what was missing (no host
configured, none healthy, none with a GPU, none with a free slot) and what the user can do."""

from __future__ import annotations

import pytest

from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector
from backend.domain.hosts import HostCensus, HostState, census_of
from backend.errors import ExecutionModeUnavailableError

NO_HOST = HostCensus()
ALL_DOWN = HostCensus(configured=2)
CPU_ONLY = HostCensus(configured=2, healthy=1, with_free_slot=1)
GPU_FULL = HostCensus(configured=1, healthy=1, with_gpu=1)


class CountedHosts:
    def __init__(self, census: HostCensus) -> None:
        self._census = census

    def is_available(self) -> bool:
        return self._census.healthy > 0

    def has_gpu(self) -> bool:
        return self._census.with_gpu > 0

    def census(self) -> HostCensus:
        return self._census


def _select(census: HostCensus, mode: ExecutionMode, *, require_gpu: bool, local_gpu: bool = False) -> str:
    selector = ExecutionModeSelector(ExecutionMode.LOCAL, CountedHosts(census), local_has_gpu=local_gpu)
    decision = selector.select(mode, require_gpu)
    assert decision.warnings in ((), (decision.reason,))
    return decision.reason


def test_a_healthy_cpu_host_is_not_called_unhealthy_when_a_gpu_was_required() -> None:
    reason = _select(CPU_ONLY, ExecutionMode.HOST, require_gpu=True, local_gpu=True)
    assert "no host service is healthy" not in reason
    assert "none of the 1 healthy host service(s) has a GPU" in reason
    assert "fell back to local execution on this backend's GPU" in reason


def test_no_host_configured_says_so_and_names_modelyard_hosts() -> None:
    reason = _select(NO_HOST, ExecutionMode.HOST, require_gpu=False)
    assert reason.startswith(
        "host mode requested but no host service is configured (MODELYARD_HOSTS is empty)"
    )
    assert "modelyard host" in reason


def test_configured_hosts_all_down_says_how_many_did_not_answer() -> None:
    reason = _select(ALL_DOWN, ExecutionMode.HOST, require_gpu=False)
    assert "no host service is healthy (0 of 2 configured answered" in reason
    assert "fell back to local execution" in reason


def test_a_busy_usable_host_is_chosen_and_the_reason_says_it_waits_for_a_slot() -> None:
    reason = _select(GPU_FULL, ExecutionMode.HOST, require_gpu=True)
    assert reason.startswith("requested host with a GPU; a GPU host is available")
    assert "no free slot" in reason
    assert "waits" in reason


@pytest.mark.parametrize(
    ("census", "mode", "expected"),
    [
        (NO_HOST, ExecutionMode.HOST, "no host service is configured"),
        (ALL_DOWN, ExecutionMode.HOST, "0 of 2 configured"),
        (CPU_ONLY, ExecutionMode.HOST, "none of the 1 healthy host service(s) has a GPU"),
        (NO_HOST, ExecutionMode.AUTO, "no host service is configured"),
        (CPU_ONLY, ExecutionMode.AUTO, "none of the 1 healthy host service(s) has a GPU"),
    ],
)
def test_a_503_names_what_was_missing_and_the_way_out(
    census: HostCensus, mode: ExecutionMode, expected: str
) -> None:
    with pytest.raises(ExecutionModeUnavailableError) as caught:
        _select(census, mode, require_gpu=True)
    assert expected in caught.value.message
    assert "require_gpu" in caught.value.message
    assert caught.value.details["healthy_hosts"] == census.healthy


def test_the_census_counts_healthy_free_and_gpu_hosts() -> None:
    states = [
        HostState("http://a", healthy=True, device_kind="cuda", capacity=1, in_use=1),
        HostState("http://b", healthy=True, device_kind="cpu", capacity=2, in_use=0),
        HostState("http://c", healthy=False, device_kind="cuda", capacity=4),
    ]
    assert census_of(states) == HostCensus(
        configured=3, healthy=2, with_free_slot=1, with_gpu=1, with_gpu_and_free_slot=0
    )
