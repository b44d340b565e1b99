"""A Ray job that is submitted fine but whose entrypoint cannot import, on the real local cluster.

The backend's entrypoint runs with a PYTHONPATH whose ``backend`` package raises on import (what a worker
with a broken or mismatched install sees): the job never reaches the backend, Ray marks it FAILED with
exit code 1, and the operation fails ``ray_job_start_failed`` at once (not retried) with Ray's message and
the job's log tail.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator

import pytest

from backend.adapters.ray_jobs import RayJobsClient
from tests.e2e.host_cluster import Api, Process, wait_until
from tests.ray.cluster import LocalRay
from tests.ray.test_ray_mode import BACKEND_START_S, ENTRYPOINT, ray_backend

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BROKEN = "this install of modelyard is broken (a test stands in for a bad runtime env)"


@pytest.fixture(scope="module")
def broken(local_ray: LocalRay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Process]]:
    folder = tmp_path_factory.mktemp("ray-broken")
    shadow = folder / "shadow" / "backend"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ImportError({BROKEN!r})\n")
    entrypoint = f"PYTHONPATH={shlex.quote(str(shadow.parent))} {shlex.quote(ENTRYPOINT)}"
    backend = ray_backend(folder, local_ray, ray_entrypoint=entrypoint)
    api = Api(backend)
    try:
        backend.launch()
        wait_until(backend.ready, BACKEND_START_S, "the backend to answer /health", every=0.2)
        wait_until(lambda: api.http.get("/api/v1/system").json()["ray"]["healthy"], 60, "the cluster healthy")
        yield api, backend
    finally:
        api.close()
        backend.kill()


def test_a_job_whose_entrypoint_fails_to_import_fails_at_once_with_ray_s_message_and_log_tail(
    broken: tuple[Api, Process], local_ray: LocalRay
) -> None:
    """It never reached the backend and exited by itself: a configuration fault, which a retry would
    repeat, so the retries the operation allows (2) are not spent on it."""
    api, _ = broken
    op_id = api.start(epochs=2, mode="ray", max_retries=2)
    op = api.finished(op_id, timeout=120)
    assert op["status"] == "failed", op
    error = op["error"]
    assert error["code"] == "ray_job_start_failed", error
    assert (
        f"Ray job {op_id} failed before it reached the backend: its entrypoint exited with code 1"
        in (error["message"])
    )
    assert "Ray says: Job entrypoint command failed with exit code 1" in error["message"], error["message"]
    assert "Not retried" in error["message"]
    assert error["details"]["exit_code"] == 1
    assert BROKEN in error["details"]["log_tail"]
    assert "ImportError" in error["details"]["log_tail"]
    assert error["details"]["submission_id"] == op_id
    assert [a["outcome"] for a in op["attempt_history"]] == ["failed"]
    submitted = [j.submission_id for j in RayJobsClient(local_ray.address).jobs()]
    assert [s for s in submitted if s.startswith(op_id)] == [op_id]  # submitted once
    logs = api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 1000}).json()
    assert any(BROKEN in line["message"] for line in logs["lines"]), logs["lines"][-20:]


def test_the_shadowing_package_is_what_broke_it() -> None:
    """The real entrypoint imports fine without the shadow: the failure above is the runtime env's."""
    done = subprocess.run([ENTRYPOINT, "ray-job", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--commands-dir" in done.stdout
