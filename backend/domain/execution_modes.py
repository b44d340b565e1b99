"""Where a training runs: the per-request choice, the system default, and the fallback rules of seed 002."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from backend.errors import ExecutionModeUnavailableError


class ExecutionMode(StrEnum):
    LOCAL = "local"
    HOST = "host"
    AUTO = "auto"


class HostAvailability(Protocol):
    """A cached answer: implementations probe in the background and never block the caller."""

    def is_available(self) -> bool:
        """At least one host answered its last health check."""
        ...

    def has_gpu(self) -> bool:
        """At least one healthy host trains on a GPU (CUDA or MPS)."""
        ...


class NoHost:
    """No host service configured: host mode is never available."""

    def is_available(self) -> bool:
        return False

    def has_gpu(self) -> bool:
        return False


@dataclass(frozen=True)
class ModeDecision:
    mode: ExecutionMode
    reason: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


class ExecutionModeSelector:
    """Turns (requested mode, require_gpu) into a concrete mode: ``local`` or ``host``.

    auto: GPU required → local if it has a GPU, else a GPU host if one is up, else an error (503);
    otherwise local.
    host: a host up (a GPU host when a GPU is required) → host; none → local with a warning, unless a
    GPU is required (then an error, 503).
    """

    def __init__(
        self, default: ExecutionMode, host: HostAvailability, *, local_has_gpu: bool = False
    ) -> None:
        self.default = default
        self._host = host
        self._local_has_gpu = local_has_gpu

    def host_available(self) -> bool:
        return self._host.is_available()

    def select(self, requested: ExecutionMode | None, require_gpu: bool) -> ModeDecision:
        mode = requested or self.default
        if mode is ExecutionMode.LOCAL:
            return self._local(require_gpu, "requested local")
        if mode is ExecutionMode.HOST:
            return self._host_mode(require_gpu)
        return self._auto(require_gpu)

    def _host_mode(self, require_gpu: bool) -> ModeDecision:
        if require_gpu and self._host.has_gpu():
            return ModeDecision(ExecutionMode.HOST, "requested host with a GPU; a GPU host is available")
        if not require_gpu and self._host.is_available():
            return ModeDecision(ExecutionMode.HOST, "requested host; a host is available")
        if require_gpu and not self._local_has_gpu:
            raise ExecutionModeUnavailableError(
                "host mode was requested with require_gpu, but no host service with a GPU is available; "
                "start a host service on a CUDA or Apple-silicon machine (modelyard host) and list it in "
                "MODELYARD_HOSTS, or drop require_gpu",
                requested=ExecutionMode.HOST.value,
            )
        warning = "host mode requested but no host service is healthy; fell back to local execution"
        return ModeDecision(ExecutionMode.LOCAL, warning, (warning,))

    def _auto(self, require_gpu: bool) -> ModeDecision:
        if not require_gpu:
            return ModeDecision(ExecutionMode.LOCAL, "auto: no GPU required, local starts fastest")
        if self._local_has_gpu:
            return ModeDecision(ExecutionMode.LOCAL, "auto: GPU required and available locally")
        if self._host.has_gpu():
            return ModeDecision(ExecutionMode.HOST, "auto: GPU required; a GPU host is available")
        raise ExecutionModeUnavailableError(
            "a GPU is required but there is none locally and no host service is available; "
            "start the host service or set require_gpu to false",
            requested="auto",
        )

    def _local(self, require_gpu: bool, reason: str) -> ModeDecision:
        if require_gpu and not self._local_has_gpu:
            raise ExecutionModeUnavailableError(
                "local mode was requested with require_gpu, but this backend has no GPU; "
                "use execution_mode 'host' or 'auto', or drop require_gpu",
                requested="local",
            )
        return ModeDecision(ExecutionMode.LOCAL, reason)
