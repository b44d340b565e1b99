"""The Ray cluster of ray mode, as values: its last observed state, a job's status, what a job reserves."""

from __future__ import annotations

import re
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
    #: The entrypoint's exit code, once it exited (Ray's ``driver_exit_code``; negative: a signal).
    exit_code: int | None = None
    #: Ray's ``error_type`` of a failed job (``JOB_ENTRYPOINT_COMMAND_ERROR``, ``RUNTIME_ENV_SETUP_FAILURE``, …).
    error_type: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    def own_failure(self) -> str | None:
        """How the job failed by itself, if Ray says it did: its runtime env could not be set up, its
        entrypoint could not be started, or the entrypoint exited with its own error code (1-127). None
        for anything else: killed by a signal (negative, or 128+N as a shell reports it), its supervisor
        or node lost, stopped, succeeded — what the infrastructure does to a job."""
        if self.status is not RayJobStatus.FAILED:
            return None
        if self.error_type == "RUNTIME_ENV_SETUP_FAILURE":
            return "its runtime env could not be set up"
        if self.error_type == "JOB_ENTRYPOINT_COMMAND_START_ERROR":
            return "its entrypoint command could not be started"
        code = self.exit_code
        if code is None and self.error_type in (None, "JOB_ENTRYPOINT_COMMAND_ERROR"):
            # A Ray that reports no driver_exit_code still says it in its message.
            found = _EXIT_CODE.search(self.message)
            code = int(found.group(1)) if found else None
        if code is not None and 0 < code < 128:
            return f"its entrypoint exited with code {code}"
        return None


_EXIT_CODE = re.compile(r"^Job entrypoint command failed with exit code (-?\d+)")


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
