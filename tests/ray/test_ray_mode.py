"""Ray mode end to end: a real local Ray cluster (2 CPUs, loopback), a real backend process, real jobs.

The tests run in file order as one story on one backend: a training completes; a model above the
inline limit is uploaded before its result; a command training completes with its artefacts; a job's
token opens its own operation's routes only; a cancel stops its job; a killed job process is lost (no
retry allowed), or resubmitted and resumed from the checkpoint it shipped; the backend is killed
mid-job and restarted, and reconciles. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backend.adapters.ray_jobs import RayJobsClient
from backend.domain.job_tokens import derive_key
from backend.domain.ray_cluster import RayJobStatus
from shared.contracts.ray_jobs import JOB_TOKEN_ENV
from shared.trainkit.workloads.command.catalog import write_sample_commands
from tests.e2e.host_cluster import (
    SECRET,
    Api,
    Process,
    backend_process,
    descendants,
    retried_once,
    wait_until,
)
from tests.ray.cluster import LocalRay

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENTRYPOINT = str(Path(sys.executable).parent / "modelyard")
#: A Ray cluster shares the 2 cores with the backend: its start may take longer than the e2e default.
BACKEND_START_S = 180.0


@dataclass
class RayStack:
    api: Api
    backend: Process
    ray: LocalRay
    jobs: RayJobsClient


def ray_backend(folder: Path, ray: LocalRay, *, port: int | None = None, **extra: str) -> Process:
    settings = {
        "ray_address": ray.address,
        "ray_entrypoint": ENTRYPOINT,
        "ray_poll_s": "0.2",
        "ray_lease_s": "5",
        # A loaded machine (the whole suite, other clusters) can take Ray's dashboard past the default 5 s
        # to accept a submit; the lease above still bounds how long a silent job is followed.
        "ray_request_timeout_s": "30",
        "ray_health_interval_s": "0.5",
        "default_execution_mode": "ray",
        **extra,
    }
    return backend_process(folder, [], port=port, **settings)


@pytest.fixture(scope="module")
def stack(local_ray: LocalRay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayStack]:
    folder = tmp_path_factory.mktemp("ray-backend")
    worker_commands = folder / "worker-commands"  # the workers' own templates (the sample ones)
    write_sample_commands(worker_commands)
    # A checkpoint every epoch, however short: the lost job's retry below resumes from one.
    backend = ray_backend(
        folder, local_ray, ray_commands_dir=str(worker_commands), checkpoint_min_interval_s="0"
    )
    api = Api(backend)
    try:
        backend.launch()
        wait_until(backend.ready, BACKEND_START_S, "the backend to answer /health", every=0.2)
        wait_until(lambda: api.http.get("/api/v1/system").json()["ray"]["healthy"], 60, "the cluster healthy")
        yield RayStack(api, backend, local_ray, RayJobsClient(local_ray.address))
    finally:
        api.close()
        backend.kill()


def job_processes(op_id: str) -> list[int]:
    """The pids of the job's entrypoint (``modelyard ray-job ... --operation-id op_id``)."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        int(line.split(None, 1)[0])
        for line in out.splitlines()
        if "ray-job" in line and f"--operation-id {op_id}" in line and "/bin/sh" not in line
    ]


def job_status(stack: RayStack, op_id: str) -> RayJobStatus | None:
    job = stack.jobs.job(op_id)
    return job.status if job is not None else None


def training_epochs(api: Api, op_id: str, at_least: int = 1) -> dict[str, Any]:
    return api.wait(
        op_id,
        lambda b: b["status"] == "running" and (b["progress"].get("epoch") or 0) >= at_least,
        f"epoch {at_least} running",
        timeout=120,
    )


def test_the_system_view_shows_the_cluster(stack: RayStack) -> None:
    system = stack.api.http.get("/api/v1/system").json()
    ray = system["ray"]
    assert ray["address"] == stack.ray.address
    assert ray["healthy"] is True
    assert ray["nodes"] == 1
    assert ray["cpus"] == 2
    assert ray["version"]
    modes = {m["mode"]: m for m in system["execution_modes"]}
    assert modes["ray"]["available"] is True
    assert "2 CPU" in modes["ray"]["detail"] or "/2 CPU" in modes["ray"]["detail"]


def test_a_request_the_cluster_can_never_hold_is_refused_at_submit_with_what_it_has(stack: RayStack) -> None:
    api = stack.api
    jobs_before = len(stack.jobs.jobs())
    too_many = api.train(mode="ray", resources={"cpus": 64})
    assert too_many.status_code == 422, too_many.text
    error = too_many.json()["error"]
    assert error["details"]["field"] == "resources"
    assert "64 CPU(s) requested" in error["message"]
    assert "2 CPU(s), 0 GPU(s)" in error["message"]
    gpu = api.train(mode="ray", require_gpu=True)
    assert gpu.status_code == 422, gpu.text
    assert gpu.json()["error"]["details"]["field"] == "require_gpu"
    bad = api.train(mode="ray", resources={"cpus": 0})
    assert bad.status_code == 422
    assert "resources" in bad.text
    assert "cpus" in bad.text
    assert len(stack.jobs.jobs()) == jobs_before  # nothing reached the cluster


def test_a_ray_training_completes_with_its_model_stored_and_history(stack: RayStack) -> None:
    api = stack.api
    op_id = api.start(epochs=2, mode="ray")
    op = api.finished(op_id, timeout=180)
    assert op["status"] == "completed", op
    assert op["execution_mode"] == "ray"
    assert op["result"]["model"]["version"] == 1
    assert api.versions() == [1]
    model_file = stack.backend.folder / str(op["result"]["model"]["path"]) / "model.safetensors"
    assert model_file.stat().st_size > 0
    metrics = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()
    assert len(metrics["history"]) == 2, metrics
    logs = api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 1000}).json()
    messages = [line["message"] for line in logs["lines"]]
    assert any("training starts" in m for m in messages), messages[-20:]
    wait_until(lambda: job_status(stack, op_id) is RayJobStatus.SUCCEEDED, 30, "the job to succeed")


def test_a_model_above_the_inline_limit_is_uploaded_stored_once_and_its_upload_deleted(
    stack: RayStack, tmp_path: Path
) -> None:
    """A tabular model of ~17.7 MB (hidden layers 2100 x 2100), above the job's 16 MiB inline limit: the
    job streams it to the backend first (PUT .../model), then posts a result that references it; the
    version holds exactly those bytes and ``runs/ray-uploads`` is empty once the operation has ended."""
    api = stack.api
    rows = ["a,b,c,d,label"] + [
        f"{i % 7 / 7:.3f},{i % 11 / 11:.3f},{i % 13 / 13:.3f},{i % 5 / 5:.3f},{(i % 7 + i % 5) % 2}"
        for i in range(400)
    ]
    table = tmp_path / "wide.csv"
    table.write_text("\n".join(rows) + "\n")
    with table.open("rb") as handle:
        uploaded = api.http.post("/api/v1/data", files={"file": ("wide.csv", handle, "text/csv")})
    assert uploaded.status_code == 201, uploaded.text
    body = {
        "workload": "tabular",
        "tabular": {"dataset": "wide.csv", "target": "label", "hidden_layers": [2100, 2100]},
        "overrides": {"epochs": 1},
        "execution_mode": "ray",
    }
    op_id = _start(api, body)
    op = api.finished(op_id, timeout=300)
    assert op["status"] == "completed", op
    version = stack.backend.folder / str(op["result"]["model"]["path"])
    weights = version / "model.safetensors"
    assert weights.stat().st_size > 16 << 20  # above the inline limit: it could not travel inline
    assert _sha256(weights) == op["result"]["host_model_sha256"]
    logs = api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 1000}).json()
    assert any("streamed the model" in line["message"] for line in logs["lines"]), logs["lines"][-20:]
    assert list((stack.backend.folder / "runs" / "ray-uploads").iterdir()) == []


def _start(api: Api, body: dict[str, Any]) -> str:
    """POST ``body`` as a training; its operation id (202 asserted)."""
    response = api.http.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_ray_command_training_completes_with_its_history_and_artefacts(stack: RayStack) -> None:
    api = stack.api
    body = {
        "workload": "command",
        "command": {"name": "toy", "params": {"steps": 200, "val_every": 50, "hidden": 16}},
        "execution_mode": "ray",
    }
    op_id = _start(api, body)
    op = api.finished(op_id, timeout=180)
    assert op["status"] == "completed", op
    assert op["execution_mode"] == "ray"
    history = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    # The script's printed steps (every 10th) and its validations (every 50th), all of them, in order.
    assert [row["step"] for row in history] == list(range(10, 201, 10)), history
    assert [row["step"] for row in history if "val_loss" in row] == [50, 100, 150, 200], history
    assert all(isinstance(row["loss"], float) for row in history), history
    version = stack.backend.folder / str(op["result"]["model"]["path"])
    metadata = json.loads((version / "metadata.json").read_text())
    stored = {name.removeprefix("files/"): entry["sha256"] for name, entry in metadata["files"].items()}
    artefacts = op["result"]["command"]["artifacts"]
    assert any(name.endswith(".pt") for name in artefacts), artefacts
    # The bytes on disk are the bytes the job delivered (their digests travelled with them).
    assert {name: _sha256(version / "files" / name) for name in artefacts} == {
        n: stored[n] for n in artefacts
    }
    assert metadata["trained_on"] == "ray"
    wait_until(lambda: job_status(stack, op_id) is RayJobStatus.SUCCEEDED, 30, "the job to succeed")


def _job_token(stack: RayStack, op_id: str) -> str:
    """The token as anyone who can read Ray's dashboard sees it: in the job's runtime_env."""
    from ray.job_submission import JobSubmissionClient

    info = JobSubmissionClient(stack.ray.address).get_job_info(op_id)
    return str(info.runtime_env["env_vars"][JOB_TOKEN_ENV])


def _as_job(api: Api, method: str, path: str, token: str, **kwargs: Any) -> Any:
    headers = {"authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return api.http.request(method, path, headers=headers, **kwargs)


def test_a_job_token_opens_only_its_own_operation_and_never_the_shared_secret_routes(stack: RayStack) -> None:
    api = stack.api
    op_id = api.start(epochs=400, mode="ray")
    other_id = api.start(epochs=400, mode="ray")
    try:
        training_epochs(api, op_id)
        token = _job_token(stack, op_id)
        assert SECRET not in token
        base = f"/api/v1/ray/jobs/{op_id}"
        spec = _as_job(api, "GET", f"{base}/spec", token)
        assert spec.status_code == 200, spec.text
        [dataset] = spec.json()["datasets"]
        data = _as_job(api, "GET", dataset["url"].removeprefix(str(api.http.base_url).rstrip("/")), token)
        assert data.status_code == 200, data.text
        assert hashlib.sha256(data.content).hexdigest() == dataset["sha256"]
        progress = {"progress": {"percentage": 1.0, "phase": "training", "message": "from the test"}}
        assert _as_job(api, "POST", f"{base}/progress", token, json=progress).status_code == 200
        # Its own result route takes the token (and judges the body: not a result).
        assert _as_job(api, "POST", f"{base}/result", token, json={}).status_code == 422

        other = f"/api/v1/ray/jobs/{other_id}"
        for method, path, kwargs in [
            ("GET", f"{other}/spec", {}),
            ("GET", f"{other}/data/{dataset['filename']}", {}),
            ("POST", f"{other}/progress", {"json": progress}),
            ("POST", f"{other}/failure", {"json": {"code": "x", "message": "forged"}}),
            ("PUT", f"{other}/model", {"content": b"x", "headers": {"x-content-sha256": "0" * 64}}),
            ("POST", f"{other}/result", {"json": {}}),
            ("GET", f"/api/v1/callbacks/checkpoints/{other_id}", {}),
            (
                "PUT",
                f"/api/v1/callbacks/checkpoints/{other_id}?session_id={other_id}&epoch=1&sha256={'0' * 64}&size=1",
                {"content": b"x"},
            ),
        ]:
            refused = _as_job(api, method, path, token, **kwargs)
            assert refused.status_code == 401, (path, refused.text)
            message = refused.json()["error"]["message"]
            assert "job token refused" in message, message
            assert f"not {other_id}" in message, message
        # The shared secret's routes: a signed host callback, a data download.
        for method, path in [
            ("POST", "/api/v1/callbacks/host-result"),
            ("GET", "/api/v1/data/EURUSD/1h/download"),
        ]:
            refused = _as_job(api, method, path, token, content=b"{}")
            assert refused.status_code in (401, 403), (path, refused.text)
            assert refused.json()["error"]["message"], refused.text

        key = derive_key([SECRET], b"unused")  # the deployment's key: what the backend mints with
        expired = key.mint(op_id, datetime.now(UTC) - timedelta(minutes=1))
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        for bad, reason in [
            (expired, "expired"),
            (forged, "signature"),
            ("myd_an_api_token", "not a job token"),
        ]:
            refused = _as_job(api, "GET", f"{base}/spec", bad)
            assert refused.status_code == 401, refused.text
            assert reason in refused.json()["error"]["message"], refused.text
        assert api.op(other_id)["status"] in ("pending", "running")  # nothing forged reached it
    finally:
        for op in (op_id, other_id):
            api.http.post(f"/api/v1/operations/{op}/cancel")
        for op in (op_id, other_id):
            api.finished(op, timeout=30)


def test_cancel_stops_the_job_within_5_s_and_its_process_is_gone(stack: RayStack) -> None:
    api = stack.api
    op_id = api.start(epochs=400, mode="ray")
    training_epochs(api, op_id)
    assert job_processes(op_id), "the job's process runs while it trains"
    response = api.http.post(f"/api/v1/operations/{op_id}/cancel")
    assert response.status_code == 202, response.text
    api.wait(op_id, lambda b: b["status"] == "cancelled", "cancelled", timeout=5)
    wait_until(lambda: not job_processes(op_id), 10, "the job's process to exit")
    wait_until(lambda: job_status(stack, op_id) is RayJobStatus.STOPPED, 10, "the job to be stopped")


def test_a_killed_job_process_fails_the_operation_with_ray_job_lost(stack: RayStack) -> None:
    api = stack.api
    op_id = api.start(epochs=400, mode="ray", max_retries=0)
    training_epochs(api, op_id)
    for pid in job_processes(op_id):
        os.kill(pid, signal.SIGKILL)
    op = api.wait(op_id, lambda b: b["status"] == "failed", "failed", timeout=30)
    assert op["error"]["code"] == "ray_job_lost", op["error"]
    assert op_id in op["error"]["message"]
    assert "Ray says" in op["error"]["message"]


def _shipped(stack: RayStack, op_id: str) -> dict[str, Any] | None:
    """The record of the checkpoint the backend keeps for ``op_id`` (None before one arrived)."""
    record = stack.backend.folder / "runs" / op_id / "checkpoints" / "shipped.json"
    try:
        shipped: dict[str, Any] = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return shipped


def test_a_killed_job_is_submitted_again_and_resumes_from_the_checkpoint_it_shipped(stack: RayStack) -> None:
    api = stack.api
    epochs = 60
    before = len(api.versions())
    op_id = api.start(epochs=epochs, mode="ray", max_retries=1)
    shipped = wait_until(
        lambda: (s := _shipped(stack, op_id)) and s["epoch"] >= 5 and s, 120, "a checkpoint from the job"
    )
    assert (shipped["session_id"], shipped["path"]) == (op_id, f"epoch-{shipped['epoch']:06d}.ckpt")
    killed = job_processes(op_id)
    assert killed, "the job's process runs while it trains"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert api.op(op_id)["status"] == "running", "the training ended before its job was killed"

    done = api.finished(op_id, timeout=240)
    second = retried_once(done, "ray_job_lost")
    assert second["resumed_from_epoch"] >= shipped["epoch"]
    assert done["host_session_id"] == f"{op_id}-attempt-2"  # Ray keeps the lost job under the first id
    assert job_status(stack, op_id) is RayJobStatus.FAILED
    history = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1))  # each epoch once
    assert len(api.versions()) == before + 1
    assert any("re-dispatched, retry 1 of 1 (max_retries)" in w for w in done["warnings"])


#: The sample ``toy`` command, long enough to outlive a kill after a shipped checkpoint past step 1000.
TOY = {"steps": 12_000, "checkpoint_every": 500, "val_every": 1000}
KILL_AFTER_STEP = 1000


def _kill_job(op_id: str) -> list[int]:
    """SIGKILL the job's entrypoint and everything under it (a command's program): what a dying worker
    node does to them. The pids killed."""
    killed = job_processes(op_id)
    killed += [pid for job in killed for pid in descendants(job)]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return killed


def test_a_killed_command_job_is_submitted_again_and_resumes_from_the_step_its_program_said(
    stack: RayStack,
) -> None:
    api = stack.api
    versions_before = api.versions("toy", "toy")
    body = {"workload": "command", "command": {"name": "toy", "params": TOY}, "execution_mode": "ray"}
    op_id = _start(api, {**body, "max_retries": 1})
    shipped = wait_until(
        lambda: (s := _shipped(stack, op_id)) and s["epoch"] >= KILL_AFTER_STEP and s,
        180,
        f"a checkpoint past step {KILL_AFTER_STEP} from the job",
    )
    assert (shipped["session_id"], shipped["path"]) == (op_id, f"step-{shipped['epoch']:09d}-checkpoint.pt")
    killed = _kill_job(op_id)
    assert len(killed) >= 2, "the job's entrypoint and its program run while it trains"
    assert api.op(op_id)["status"] == "running", "the training ended before its job was killed"

    done = api.finished(op_id, timeout=300)
    second = retried_once(done, "ray_job_lost")
    resumed = second["resumed_from_epoch"]
    assert resumed >= shipped["epoch"]
    assert resumed % TOY["checkpoint_every"] == 0  # the step the program said, not one it printed later
    assert done["host_session_id"] == f"{op_id}-attempt-2"
    logs = [
        line["message"]
        for line in api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 5000}).json()["lines"]
    ]
    assert any(f"resumed from step {resumed}" in line for line in logs), logs[-40:]
    history = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    steps = [row["step"] for row in history]
    assert steps == sorted(set(steps)), steps  # each step once
    assert steps == list(range(10, TOY["steps"] + 1, 10))  # and none missing: the lost job's up to the resume
    after = sorted(api.versions("toy", "toy"))  # listed newest first
    assert after == sorted([*versions_before, max(versions_before, default=0) + 1])  # stored once


def test_a_backend_killed_mid_job_reconciles_after_restart_with_one_version(stack: RayStack) -> None:
    api = stack.api
    before = len(api.versions())
    op_id = api.start(epochs=15, mode="ray")
    training_epochs(api, op_id)
    stack.backend.kill(signal.SIGKILL)
    stack.backend.launch()
    wait_until(stack.backend.ready, BACKEND_START_S, "the restarted backend to answer /health", every=0.2)
    op = api.finished(op_id, timeout=180)
    assert op["status"] == "completed", op
    assert len(api.versions()) == before + 1
    submitted = [job for job in stack.jobs.jobs() if job.submission_id == op_id]
    assert len(submitted) == 1  # nothing submitted twice
    assert "re-attaching" in stack.backend.log()
