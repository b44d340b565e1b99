"""The Ray cluster of ray mode, as values: its last observed state, a job's status, what a job reserves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RayJobStatus(StrEnum):
    """Ray's JobStatus values, as its Jobs API spells them."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


TERMINAL_JOB_STATUSES = frozenset({RayJobStatus.STOPPED, RayJobStatus.SUCCEEDED, RayJobStatus.FAILED})


@dataclass(frozen=True)
class RayJob:
    submission_id: str
    status: RayJobStatus
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


@dataclass(frozen=True)
class JobResources:
    """What the job's entrypoint reserves (Ray's ``entrypoint_num_cpus`` / ``_gpus`` / ``_memory``)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_bytes: int | None = None


@dataclass(frozen=True)
class RayClusterState:
    address: str
    healthy: bool = False
    version: str | None = None
    nodes: int = 0
    cpus: float = 0.0
    gpus: float = 0.0
    memory_bytes: float = 0.0
    free_cpus: float = 0.0
    free_gpus: float = 0.0
    checked_at: datetime | None = None
    error: str | None = None

    def refusal(self, wanted: JobResources) -> str | None:
        """Why a job asking for ``wanted`` could never run on this cluster (None: it fits some day).

        Checked against the whole cluster's totals, so a busy cluster queues the job (Ray's own
        scheduling) while an impossible request is refused at submit."""
        have = f"the cluster has {self.cpus:g} CPU(s), {self.gpus:g} GPU(s) on {self.nodes} node(s)"
        if wanted.cpus > self.cpus:
            return f"{wanted.cpus:g} CPU(s) requested but {have}"
        if wanted.gpus > self.gpus:
            return f"a GPU was requested (require_gpu) but {have}"
        if wanted.memory_bytes is not None and self.memory_bytes and wanted.memory_bytes > self.memory_bytes:
            return (
                f"{wanted.memory_bytes / 2**20:.0f} MiB of memory requested but the cluster has "
                f"{self.memory_bytes / 2**20:.0f} MiB"
            )
        return None
