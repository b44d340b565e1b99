"""The Ray head stopped mid-training, on a real local cluster of its own (the session's cluster keeps
serving the other Ray tests): the backend stops hearing from the job, and once the lease is over the
operation fails ``ray_job_lost``, naming the silence; nothing is left ``running`` and the backend still
answers. Every wait has a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.host_cluster import Api, Process, wait_until
from tests.ray.cluster import LocalRay, start_local_ray
from tests.ray.test_ray_mode import BACKEND_START_S, job_processes, ray_backend, training_epochs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def doomed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Process, LocalRay]]:
    cluster = start_local_ray()
    folder = tmp_path_factory.mktemp("ray-head-stopped")
    backend = ray_backend(folder, cluster)
    api = Api(backend)
    try:
        backend.launch()
        wait_until(backend.ready, BACKEND_START_S, "the backend to answer /health", every=0.2)
        wait_until(lambda: api.http.get("/api/v1/system").json()["ray"]["healthy"], 60, "the cluster healthy")
        yield api, backend, cluster
    finally:
        api.close()
        backend.kill()
        cluster.stop()


def test_the_head_stopped_mid_training_fails_the_operation_ray_job_lost_within_the_lease(
    doomed: tuple[Api, Process, LocalRay],
) -> None:
    api, backend, cluster = doomed
    op_id = api.start(epochs=400, mode="ray", max_retries=0)  # the loss itself, not its retry
    training_epochs(api, op_id, at_least=1)
    cluster.stop()  # the head and everything of the cluster, by its process group
    assert cluster.processes() == []

    op = api.finished(op_id, timeout=120)  # the lease is 5 s (ray_backend); the rest is slack for load
    assert op["status"] == "failed", op
    error = op["error"]
    assert error["code"] == "ray_job_lost", error
    assert op_id in error["message"]
    assert op["completed_at"] is not None
    # The job's own process went with its cluster: no training left running for nobody.
    wait_until(lambda: job_processes(op_id) == [], 30, "the job's process to end")
    # The backend serves on; the cluster shows as down rather than hanging the system view.
    wait_until(lambda: api.http.get("/api/v1/system").json()["ray"]["healthy"] is False, 60, "ray unhealthy")
    assert backend.ready()
