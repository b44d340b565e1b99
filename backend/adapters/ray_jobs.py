"""RayJobsClient: the RayJobs port over Ray's Jobs SDK (``ray.job_submission.JobSubmissionClient``).

The SDK calls ``requests`` without a timeout; every call here gets one (a dead head must never hold a
thread, let alone a request). The SDK's untyped failures become RayUnavailableError (no answer, 5xx) or
RayRejectedError (4xx, "already exists"). ``ray`` is imported only when a cluster is configured: it is
an optional extra (``pip install 'modelyard[ray]'``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from backend.domain.ray_cluster import JobResources, RayClusterState, RayJob, RayJobStatus
from backend.errors import RayRejectedError, RayUnavailableError

logger = logging.getLogger(__name__)


class _ResponseError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:500]}")
        self.status = status
        self.text = text


def _client_class(timeout_s: float) -> type[Any]:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RayUnavailableError(
            "MODELYARD_RAY_ADDRESS is set but ray is not installed here: pip install 'modelyard[ray]'"
        ) from exc

    class TimedClient(JobSubmissionClient):
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            return super()._do_request(method, endpoint, **kwargs)

        def _raise_error(self, r: requests.Response) -> None:
            raise _ResponseError(r.status_code, r.text)

    return TimedClient


class RayJobsClient:
    def __init__(self, address: str, *, timeout_s: float = 5.0) -> None:
        self._address = address.rstrip("/")
        self._timeout = timeout_s
        self._client: Any = None

    @property
    def address(self) -> str:
        return self._address

    def _sdk(self) -> Any:
        """The SDK client, built on first use (its constructor calls the cluster: it must not run at
        import or while a request waits)."""
        if self._client is None:
            self._client = self._call(lambda: _client_class(self._timeout)(self._address))
        return self._client

    def _call(self, action: Any, **details: Any) -> Any:
        try:
            return action()
        except _ResponseError as exc:
            # A submission id taken already: 400 from the job agent, which Ray's head relays as a 500
            # whose traceback ends with the agent's message.
            if "already exists" in exc.text:
                details = {**details, "exists": True}
            error = (
                RayUnavailableError if exc.status >= 500 and not details.get("exists") else RayRejectedError
            )
            raise error(
                f"Ray at {self._address} answered {exc}", address=self._address, status=exc.status, **details
            ) from exc
        except (requests.RequestException, ConnectionError, TimeoutError) as exc:
            raise RayUnavailableError(
                f"the Ray Jobs API at {self._address} does not answer: {exc}",
                address=self._address,
                **details,
            ) from exc
        except RuntimeError as exc:  # the SDK's version check and its other untyped failures
            raise RayUnavailableError(
                f"Ray at {self._address}: {exc}", address=self._address, **details
            ) from exc

    def cluster(self) -> RayClusterState:
        sdk = self._sdk()
        version = self._call(lambda: sdk._do_request("GET", "/api/version").json().get("ray_version"))
        nodes = self._call(lambda: sdk._do_request("GET", "/nodes?view=summary").json())
        status = self._call(lambda: sdk._do_request("GET", "/api/cluster_status").json())
        alive = [
            n["raylet"]
            for n in nodes.get("data", {}).get("summary", [])
            if n.get("raylet", {}).get("state") == "ALIVE"
        ]
        totals: dict[str, float] = {}
        for raylet in alive:
            for name, amount in (raylet.get("resourcesTotal") or {}).items():
                totals[name] = totals.get(name, 0.0) + float(amount)
        usage = (
            status.get("data", {}).get("clusterStatus", {}).get("loadMetricsReport", {}).get("usage", {})
            or {}
        )

        def free(name: str) -> float:
            used_total = usage.get(name)
            if isinstance(used_total, list) and len(used_total) == 2:
                return max(float(used_total[1]) - float(used_total[0]), 0.0)
            return totals.get(name, 0.0)

        return RayClusterState(
            address=self._address,
            healthy=True,
            version=version,
            nodes=len(alive),
            cpus=totals.get("CPU", 0.0),
            gpus=totals.get("GPU", 0.0),
            memory_bytes=totals.get("memory", 0.0),
            free_cpus=free("CPU"),
            free_gpus=free("GPU"),
            checked_at=datetime.now(UTC),
        )

    def submit(
        self, submission_id: str, entrypoint: str, *, env: Mapping[str, str], resources: JobResources
    ) -> None:
        sdk = self._sdk()
        self._call(  # RayRejectedError with details["exists"] when the id is taken already
            lambda: sdk.submit_job(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env={"env_vars": dict(env)},
                metadata={"modelyard_operation_id": submission_id},
                entrypoint_num_cpus=resources.cpus,
                entrypoint_num_gpus=resources.gpus or None,
                entrypoint_memory=resources.memory_bytes,
            ),
            submission_id=submission_id,
        )

    def job(self, submission_id: str) -> RayJob | None:
        sdk = self._sdk()
        try:
            info = self._call(lambda: sdk.get_job_info(submission_id), submission_id=submission_id)
        except RayRejectedError as exc:
            if exc.details.get("status") == 404:
                return None
            raise
        return _job_of(info)

    def jobs(self) -> list[RayJob]:
        sdk = self._sdk()
        return [_job_of(info) for info in self._call(sdk.list_jobs) if info.submission_id]

    def stop(self, submission_id: str) -> bool:
        sdk = self._sdk()
        return bool(self._call(lambda: sdk.stop_job(submission_id), submission_id=submission_id))

    def logs(self, submission_id: str) -> str:
        sdk = self._sdk()
        return str(self._call(lambda: sdk.get_job_logs(submission_id), submission_id=submission_id))


def _job_of(info: Any) -> RayJob:
    exit_code = getattr(info, "driver_exit_code", None)
    error_type = getattr(info, "error_type", None)
    return RayJob(
        submission_id=str(info.submission_id),
        status=RayJobStatus(str(getattr(info.status, "value", info.status))),
        message=str(info.message or ""),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        error_type=str(getattr(error_type, "value", error_type)) if error_type else None,
    )
