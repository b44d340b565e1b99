"""FakeRayJobs: the RayJobs port in memory, scripted by the test (no cluster)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from backend.domain.ray_cluster import JobResources, RayClusterState, RayJob, RayJobStatus
from backend.errors import RayRejectedError, RayUnavailableError


@dataclass
class FakeRayJobs:
    address: str = "http://ray.test:8265"
    cpus: float = 2.0
    gpus: float = 0.0
    down: bool = False
    states: dict[str, RayJob] = field(default_factory=dict)
    submissions: list[tuple[str, str, dict[str, str], JobResources]] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    log_text: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _check(self) -> None:
        if self.down:
            raise RayUnavailableError(f"the Ray Jobs API at {self.address} does not answer: refused")

    def cluster(self) -> RayClusterState:
        self._check()
        return RayClusterState(
            address=self.address, healthy=True, version="2.60.0", nodes=1, cpus=self.cpus, gpus=self.gpus,
            memory_bytes=8 * 2**30, free_cpus=self.cpus, free_gpus=self.gpus,
        )  # fmt: skip

    def submit(
        self, submission_id: str, entrypoint: str, *, env: Mapping[str, str], resources: JobResources
    ) -> None:
        self._check()
        with self.lock:
            if submission_id in self.states:
                raise RayRejectedError(f"Job with submission_id {submission_id} already exists.", exists=True)
            self.submissions.append((submission_id, entrypoint, dict(env), resources))
            self.states[submission_id] = RayJob(submission_id, RayJobStatus.RUNNING, "running")

    def job(self, submission_id: str) -> RayJob | None:
        self._check()
        return self.states.get(submission_id)

    def jobs(self) -> list[RayJob]:
        self._check()
        return list(self.states.values())

    def stop(self, submission_id: str) -> bool:
        self._check()
        self.stops.append(submission_id)
        self.finish(submission_id, RayJobStatus.STOPPED, "Job was intentionally stopped.")
        return True

    def logs(self, submission_id: str) -> str:
        self._check()
        return self.log_text.get(submission_id, "")

    def finish(self, submission_id: str, status: RayJobStatus, message: str) -> None:
        with self.lock:
            self.states[submission_id] = RayJob(submission_id, status, message)
