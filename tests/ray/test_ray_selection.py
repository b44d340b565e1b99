"""The selector knows Ray; an impossible request is refused with what the cluster has; job tokens."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector, NoHost
from backend.domain.job_tokens import JobTokenError, JobTokenKey, derive_key
from backend.domain.ray_cluster import JobResources, RayClusterState
from backend.errors import ExecutionModeUnavailableError


@dataclass
class FixedRay:
    state_: RayClusterState = field(
        default_factory=lambda: RayClusterState(
            "http://ray:8265", healthy=True, nodes=2, cpus=8, gpus=1, free_gpus=1
        )
    )

    def is_available(self) -> bool:
        return self.state_.healthy

    def has_free_gpu(self) -> bool:
        return self.state_.healthy and self.state_.free_gpus >= 1

    def state(self) -> RayClusterState:
        return self.state_


def selector(ray: FixedRay | None) -> ExecutionModeSelector:
    return ExecutionModeSelector(ExecutionMode.AUTO, NoHost(), ray=ray)


def test_ray_is_chosen_when_asked_for_and_the_cluster_answers() -> None:
    decision = selector(FixedRay()).select(ExecutionMode.RAY, require_gpu=False)
    assert decision.mode is ExecutionMode.RAY
    assert "http://ray:8265" in decision.reason


def test_ray_without_an_address_is_a_503_naming_the_variable() -> None:
    with pytest.raises(ExecutionModeUnavailableError, match="MODELYARD_RAY_ADDRESS"):
        selector(None).select(ExecutionMode.RAY, require_gpu=False)


def test_ray_with_a_dead_cluster_is_a_503_naming_its_address() -> None:
    dead = FixedRay(RayClusterState("http://ray:8265", healthy=False, error="connection refused"))
    with pytest.raises(ExecutionModeUnavailableError, match=r"http://ray:8265.*connection refused"):
        selector(dead).select(ExecutionMode.RAY, require_gpu=False)


def test_auto_with_a_gpu_required_takes_a_ray_cluster_with_a_free_gpu() -> None:
    assert selector(FixedRay()).select(None, require_gpu=True).mode is ExecutionMode.RAY
    busy = FixedRay(RayClusterState("http://ray:8265", healthy=True, cpus=8, gpus=1, free_gpus=0))
    with pytest.raises(ExecutionModeUnavailableError, match="no free GPU"):
        selector(busy).select(None, require_gpu=True)


def test_a_request_the_cluster_can_never_hold_is_refused_with_what_it_has() -> None:
    s = selector(FixedRay())
    assert s.ray_refusal(JobResources(cpus=8, gpus=1)) is None
    refusal = s.ray_refusal(JobResources(cpus=16))
    assert refusal is not None
    assert "16 CPU(s) requested" in refusal
    assert "8 CPU(s), 1 GPU(s) on 2 node(s)" in refusal
    cpu_only = selector(FixedRay(RayClusterState("http://ray:8265", healthy=True, nodes=1, cpus=2)))
    assert "GPU was requested" in (cpu_only.ray_refusal(JobResources(gpus=1)) or "")


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_job_token_opens_only_its_own_operation_until_it_expires() -> None:
    key = derive_key(["whsec_shared"], b"unused")
    token = key.mint("op_a", NOW + timedelta(hours=1))
    key.verify(token, "op_a", NOW)
    assert "whsec_shared" not in token
    with pytest.raises(JobTokenError, match="not op_b"):
        key.verify(token, "op_b", NOW)
    with pytest.raises(JobTokenError, match="expired"):
        key.verify(token, "op_a", NOW + timedelta(hours=2))
    with pytest.raises(JobTokenError, match="signature"):
        JobTokenKey(b"another key").verify(token, "op_a", NOW)
    forged = token.replace("op_a", "op_b")
    with pytest.raises(JobTokenError):
        key.verify(forged, "op_b", NOW)
    with pytest.raises(JobTokenError, match="not a job token"):
        key.verify("myd_some_api_token", "op_a", NOW)


def test_a_job_token_names_its_submission_which_names_its_operation() -> None:
    key = derive_key(["whsec_shared"], b"unused")
    assert key.verify(key.mint("op_a", NOW + timedelta(hours=1)), "op_a", NOW) == "op_a"
    retry = key.mint("op_a-attempt-3", NOW + timedelta(hours=1))
    assert key.verify(retry, "op_a", NOW) == "op_a-attempt-3"  # a re-submission of op_a
    with pytest.raises(JobTokenError, match="for operation op_a, not op_a-attempt-3"):
        key.verify(retry, "op_a-attempt-3", NOW)
    odd = key.mint("op_a-attempt-x", NOW + timedelta(hours=1))  # not an attempt's number: its own id
    with pytest.raises(JobTokenError, match="for operation op_a-attempt-x, not op_a"):
        key.verify(odd, "op_a", NOW)


def test_a_token_minted_before_tokens_named_the_submission_is_taken_for_any_job_of_its_operation() -> None:
    """A job running across the upgrade keeps its credential (``mjt_``, its MAC over the operation id)."""
    key = derive_key(["whsec_shared"], b"unused")
    expiry = int((NOW + timedelta(hours=1)).timestamp())
    mac = hmac.new(key.secret, f"modelyard-ray-job|op_a|{expiry}".encode(), hashlib.sha256).hexdigest()
    legacy = f"mjt_op_a.{expiry}.{mac}"
    assert key.verify(legacy, "op_a", NOW) is None  # no submission named: any job of op_a
    with pytest.raises(JobTokenError, match="not op_b"):
        key.verify(legacy, "op_b", NOW)
    # A new token's MAC does not pass as a legacy one, nor the other way round.
    minted = key.mint("op_a", NOW + timedelta(hours=1))
    with pytest.raises(JobTokenError, match="signature"):
        key.verify("mjt_" + minted.removeprefix("mjs_"), "op_a", NOW)
    with pytest.raises(JobTokenError, match="signature"):
        key.verify("mjs_" + legacy.removeprefix("mjt_"), "op_a", NOW)
