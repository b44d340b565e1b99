"""Where a training runs: the per-request choice, the system default, and the fallback rules of seed 002."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from backend.domain.hosts import HostCensus
from backend.domain.ray_cluster import JobResources, RayClusterState
from backend.errors import ExecutionModeUnavailableError


class ExecutionMode(StrEnum):
    LOCAL = "local"
    HOST = "host"
    RAY = "ray"
    AUTO = "auto"


class HostAvailability(Protocol):
    """A cached answer: implementations probe in the background and never block the caller."""

    def is_available(self) -> bool:
        """At least one host answered its last health check."""
        ...

    def has_gpu(self) -> bool:
        """At least one healthy host trains on a GPU (CUDA or MPS)."""
        ...

    def census(self) -> HostCensus:
        """Configured / healthy / free / GPU host counts, so a refusal can say what was missing."""
        ...


class RayAvailability(Protocol):
    """The Ray cluster's last background check (never a call to the cluster)."""

    def is_available(self) -> bool: ...

    def has_free_gpu(self) -> bool: ...

    def state(self) -> RayClusterState: ...


class NoHost:
    """No host service configured: host mode is never available."""

    def is_available(self) -> bool:
        return False

    def has_gpu(self) -> bool:
        return False

    def census(self) -> HostCensus:
        return HostCensus()


@dataclass(frozen=True)
class ModeDecision:
    mode: ExecutionMode
    reason: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


class ExecutionModeSelector:
    """Turns (requested mode, require_gpu) into a concrete mode: ``local`` or ``host``.

    auto: GPU required → local if it has a GPU, else a GPU host if one is up, else a Ray cluster with a
    free GPU, else an error (503); otherwise local.
    ray: the Ray cluster answers its checks → ray; else an error (503) naming what to start.
    host: a host up (a GPU host when a GPU is required) → host; none → local with a warning, unless a
    GPU is required (then an error, 503).
    """

    def __init__(
        self,
        default: ExecutionMode,
        host: HostAvailability,
        *,
        local_has_gpu: bool = False,
        ray: RayAvailability | None = None,
    ) -> None:
        self.default = default
        self._host = host
        self._local_has_gpu = local_has_gpu
        self._ray = ray

    def ray_state(self) -> RayClusterState | None:
        return self._ray.state() if self._ray is not None else None

    def ray_refusal(self, wanted: JobResources) -> str | None:
        """Why the cluster could never run a job asking ``wanted`` (by its last check); None if it could."""
        state = self.ray_state()
        return state.refusal(wanted) if state is not None and state.healthy else None

    def host_available(self) -> bool:
        return self._host.is_available()

    def select(self, requested: ExecutionMode | None, require_gpu: bool) -> ModeDecision:
        mode = requested or self.default
        if mode is ExecutionMode.LOCAL:
            return self._local(require_gpu, "requested local")
        if mode is ExecutionMode.HOST:
            return self._host_mode(require_gpu)
        if mode is ExecutionMode.RAY:
            return self._ray_mode(require_gpu)
        return self._auto(require_gpu)

    def _ray_mode(self, require_gpu: bool) -> ModeDecision:
        if self._ray is None:
            raise ExecutionModeUnavailableError(
                "ray mode was requested but this backend has no Ray cluster: set MODELYARD_RAY_ADDRESS to "
                "its Jobs API (e.g. http://head:8265) and restart, or use execution_mode 'local' or 'host'",
                requested=ExecutionMode.RAY.value,
            )
        state = self._ray.state()
        if not state.healthy:
            raise ExecutionModeUnavailableError(
                f"ray mode was requested but the Ray cluster at {state.address} does not answer "
                f"({state.error}); start it (`ray start --head --dashboard-host ...`) or use another mode",
                requested=ExecutionMode.RAY.value,
                address=state.address,
            )
        where = f"Ray cluster at {state.address} ({state.nodes} node(s), {state.cpus:g} CPU(s), {state.gpus:g} GPU(s))"
        return ModeDecision(ExecutionMode.RAY, f"requested ray; {where}")

    def _host_mode(self, require_gpu: bool) -> ModeDecision:
        census = self._host.census()
        if census.usable(require_gpu=require_gpu) > 0:
            reason = (
                "requested host with a GPU; a GPU host is available"
                if require_gpu
                else "requested host; a host is available"
            )
            busy = census.busy(require_gpu=require_gpu)
            return ModeDecision(ExecutionMode.HOST, f"{reason} ({busy})" if busy else reason)
        missing = census.missing(require_gpu=require_gpu)
        if require_gpu and not self._local_has_gpu:
            raise ExecutionModeUnavailableError(
                f"host mode was requested with require_gpu, but {_or_drop_gpu(missing)}; this backend "
                "has no GPU either, so it cannot fall back to local execution",
                requested=ExecutionMode.HOST.value,
                configured_hosts=census.configured,
                healthy_hosts=census.healthy,
                gpu_hosts=census.with_gpu,
            )
        where = "on this backend's GPU" if require_gpu else "on this backend"
        warning = f"host mode requested but {missing}; fell back to local execution {where}"
        return ModeDecision(ExecutionMode.LOCAL, warning, (warning,))

    def _auto(self, require_gpu: bool) -> ModeDecision:
        if not require_gpu:
            return ModeDecision(ExecutionMode.LOCAL, "auto: no GPU required, local starts fastest")
        if self._local_has_gpu:
            return ModeDecision(ExecutionMode.LOCAL, "auto: GPU required and available locally")
        census = self._host.census()
        if census.with_gpu > 0:
            busy = census.busy(require_gpu=True)
            reason = "auto: GPU required; a GPU host is available"
            return ModeDecision(ExecutionMode.HOST, f"{reason} ({busy})" if busy else reason)
        if self._ray is not None and self._ray.has_free_gpu():
            address = self._ray.state().address
            return ModeDecision(
                ExecutionMode.RAY, f"auto: GPU required; the Ray cluster at {address} has a free GPU"
            )
        ray_missing = (
            "" if self._ray is None else f"; the Ray cluster at {self._ray.state().address} has no free GPU"
        )
        raise ExecutionModeUnavailableError(
            f"a GPU is required but this backend has none and "
            f"{_or_drop_gpu(census.missing(require_gpu=True) + ray_missing)}",
            requested="auto",
            configured_hosts=census.configured,
            healthy_hosts=census.healthy,
            gpu_hosts=census.with_gpu,
        )

    def _local(self, require_gpu: bool, reason: str) -> ModeDecision:
        if require_gpu and not self._local_has_gpu:
            raise ExecutionModeUnavailableError(
                "local mode was requested with require_gpu, but this backend has no GPU; "
                "use execution_mode 'host' or 'auto', or drop require_gpu",
                requested="local",
            )
        return ModeDecision(ExecutionMode.LOCAL, reason)


def _or_drop_gpu(missing: str) -> str:
    return missing if "require_gpu" in missing else f"{missing}; or drop require_gpu"
