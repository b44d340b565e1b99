"""How a finished Ray job ended, from Ray's own fields: by itself (a configuration fault) or otherwise."""

from __future__ import annotations

import pytest

from backend.domain.ray_cluster import RayJob, RayJobStatus

FAILED = RayJobStatus.FAILED


@pytest.mark.parametrize(
    ("job", "own"),
    [
        (RayJob("j", FAILED, "…", 1, "JOB_ENTRYPOINT_COMMAND_ERROR"), "its entrypoint exited with code 1"),
        (
            RayJob("j", FAILED, "…", 127, "JOB_ENTRYPOINT_COMMAND_ERROR"),
            "its entrypoint exited with code 127",
        ),
        (RayJob("j", FAILED, "…", None, "RUNTIME_ENV_SETUP_FAILURE"), "its runtime env could not be set up"),
        (
            RayJob("j", FAILED, "…", None, "JOB_ENTRYPOINT_COMMAND_START_ERROR"),
            "its entrypoint command could not be started",
        ),
        # A Ray that gives no driver_exit_code: its message says it.
        (
            RayJob("j", FAILED, "Job entrypoint command failed with exit code 2, last logs"),
            "its entrypoint exited with code 2",
        ),
        # Signals, as Python or as a shell reports them; the supervisor or node lost; not failed at all.
        (RayJob("j", FAILED, "…", -9, "JOB_ENTRYPOINT_COMMAND_ERROR"), None),
        (RayJob("j", FAILED, "…", 137, "JOB_ENTRYPOINT_COMMAND_ERROR"), None),
        (RayJob("j", FAILED, "Job entrypoint command failed with exit code -15"), None),
        (RayJob("j", FAILED, "Job supervisor actor died: …", None, "JOB_SUPERVISOR_ACTOR_DIED"), None),
        (RayJob("j", FAILED, "Unexpected error occurred: failed to get job supervisor."), None),
        (RayJob("j", RayJobStatus.STOPPED, "Job was intentionally stopped."), None),
        (RayJob("j", RayJobStatus.SUCCEEDED, "", 0), None),
    ],
)
def test_a_job_s_own_failure_is_told_from_what_the_infrastructure_did(job: RayJob, own: str | None) -> None:
    assert job.own_failure() == own
