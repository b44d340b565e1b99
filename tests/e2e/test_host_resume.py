"""A host lost mid-training costs the epochs since its last checkpoint, not the training: two real hosts
and a real backend on 127.0.0.1, host A killed with SIGKILL once a checkpoint of it reached the backend,
and the training completes on host B resumed from that checkpoint (the request's own max_retries, with
the server's at 0), each epoch once in the history, one model version, nothing of host A left running."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from tests.e2e.host_cluster import (
    Cluster,
    Process,
    running,
    two_host_cluster,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 60
KILL_AFTER_EPOCH = 10


SHIPPING = {"checkpoint_min_interval_s": "0", "checkpoint_poll_s": "0.1"}


# One cluster per test: each kills one of its hosts.
@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with two_host_cluster(
        tmp_path_factory.mktemp("resume"), host_settings=SHIPPING, max_retries="0"
    ) as started:
        yield started


def _shipped(backend: Process, op_id: str) -> dict[str, Any] | None:
    """The record of the checkpoint the backend keeps for ``op_id`` (None before one arrived)."""
    record = backend.folder / "runs" / op_id / "checkpoints" / "shipped.json"
    try:
        shipped: dict[str, Any] = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return shipped


def _placed(cluster: Cluster, op_id: str) -> tuple[dict[str, Any], Process, Process]:
    """The operation once on a host, the host it runs on (A) and the other one (B)."""
    first = cluster.api.wait(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    host_a = next(h for h in cluster.hosts if h.url == first["host_url"])
    return first, host_a, next(h for h in cluster.hosts if h is not host_a)


def _shipped_past(cluster: Cluster, op_id: str, label: int, timeout: float) -> dict[str, Any]:
    """The record of the first checkpoint host A shipped with an epoch (or step) of at least ``label``."""
    shipped: dict[str, Any] = wait_until(
        lambda: (s := _shipped(cluster.backend, op_id)) and s["epoch"] >= label and s,
        timeout,
        f"a checkpoint of at least {label} from host A",
    )
    return shipped


def _resumed_and_two_epochs_on(op: dict[str, Any]) -> bool:
    if op["status"] == "completed":
        return True
    resumed = op["attempt_history"][-1]["resumed_from_epoch"]
    return len(op["attempt_history"]) == 2 and resumed is not None and op["progress"]["epoch"] >= resumed + 2


def test_a_killed_hosts_training_resumes_on_the_other_host_from_its_last_checkpoint(cluster: Cluster) -> None:
    api = cluster.api
    versions_before = api.versions()
    op_id = api.start(epochs=EPOCHS, max_retries=1)
    first, host_a, host_b = _placed(cluster, op_id)
    shipped = _shipped_past(cluster, op_id, KILL_AFTER_EPOCH, 60)
    assert shipped["session_id"] == first["host_session_id"]
    left_behind = host_a.descendants()
    assert left_behind, "host A trains in a child process"
    host_a.kill(signal.SIGKILL)
    before_kill = api.op(op_id)
    assert before_kill["status"] == "running", "the training ended before host A was killed"

    # While host B trains on: the history goes on from the checkpoint, each epoch once, no gap.
    live = api.wait(op_id, _resumed_and_two_epochs_on, "host B two epochs past its resume", timeout=120)
    epochs = [row["epoch"] for row in api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]]
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    if live["status"] == "running":
        assert len(epochs) >= live["attempt_history"][-1]["resumed_from_epoch"]

    done = api.finished(op_id, timeout=240)
    assert done["status"] == "completed", done
    first_attempt, second_attempt = done["attempt_history"]
    assert (first_attempt["where"], first_attempt["outcome"]) == (f"host {host_a.url}", "requeued")
    assert (second_attempt["where"], second_attempt["outcome"]) == (f"host {host_b.url}", "completed")
    resumed = second_attempt["resumed_from_epoch"]
    assert resumed >= shipped["epoch"] > 0
    assert (second_attempt["from_checkpoint"], second_attempt["trigger"]) == (True, "automatic")
    assert done["host_url"] == host_b.url
    history = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))  # each epoch once
    assert api.versions() == [*versions_before, max(versions_before, default=0) + 1]  # stored once
    logs = [
        line["message"]
        for line in api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 5000}).json()["lines"]
    ]
    assert f"operation {op_id}: retrying from epoch {resumed} on host {host_b.url}" in logs, logs[-40:]
    assert any("re-dispatched, retry 1 of 1 (max_retries)" in w for w in done["warnings"])
    # Nothing of host A trains on for nobody: its fork server and training child exited with it.
    wait_until(lambda: not any(map(running, left_behind)), 15, "host A's processes to exit")


#: The sample ``toy`` command, long enough to outlive a kill after its second kept checkpoint.
TOY = {"steps": 12_000, "checkpoint_every": 500, "val_every": 1000}
KILL_AFTER_STEP = 1000


def _toy(api: Any, **extra: Any) -> str:
    body = {"workload": "command", "command": {"name": "toy", "params": TOY}, **extra}
    response = api.http.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


def _weights(backend: Process, op: dict[str, Any]) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = torch.load(
        backend.folder / op["result"]["model"]["path"] / "files" / "model.pt", weights_only=True
    )
    return weights


def test_a_killed_hosts_command_training_resumes_on_the_other_host_from_the_step_its_program_said(
    cluster: Cluster,
) -> None:
    api = cluster.api
    straight_id = _toy(api, execution_mode="local")  # the same training, never interrupted
    op_id = _toy(api, execution_mode="host", max_retries=1)
    _, host_a, host_b = _placed(cluster, op_id)
    shipped = _shipped_past(cluster, op_id, KILL_AFTER_STEP, 120)
    assert shipped["path"] == f"step-{shipped['epoch']:09d}-checkpoint.pt"
    host_a.kill(signal.SIGKILL)
    assert api.op(op_id)["status"] == "running", "the training ended before host A was killed"

    done = api.finished(op_id, timeout=300)
    assert done["status"] == "completed", done
    first_attempt, second_attempt = done["attempt_history"]
    assert (first_attempt["where"], first_attempt["outcome"]) == (f"host {host_a.url}", "requeued")
    assert (second_attempt["where"], second_attempt["outcome"]) == (f"host {host_b.url}", "completed")
    resumed = second_attempt["resumed_from_epoch"]
    assert resumed >= shipped["epoch"]
    assert resumed % TOY["checkpoint_every"] == 0  # the step the program said, not one it printed later
    logs = [
        line["message"]
        for line in api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 5000}).json()["lines"]
    ]
    assert any(f"resumed from step {resumed}" in line for line in logs), logs[-40:]
    steps = [row["step"] for row in api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]]
    assert steps == sorted(set(steps)), steps  # each step once
    assert steps[-1] == TOY["steps"]
    assert min(steps) <= resumed + 10, steps

    straight = api.finished(straight_id, timeout=300)
    assert straight["status"] == "completed", straight
    resumed_weights, straight_weights = _weights(cluster.backend, done), _weights(cluster.backend, straight)
    assert resumed_weights.keys() == straight_weights.keys()
    assert all(torch.equal(resumed_weights[k], straight_weights[k]) for k in straight_weights)


def test_a_host_killed_before_its_first_checkpoint_retries_from_scratch_on_the_other_host(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No checkpoint reached the backend: the retry starts from scratch, says so, and the lost attempt's
    epochs are replaced in the history, not doubled."""
    never = {**SHIPPING, "checkpoint_every_epochs": "100000"}  # none within this training
    with two_host_cluster(
        tmp_path_factory.mktemp("scratch"), host_settings=never, max_retries="0"
    ) as cluster:
        api = cluster.api
        versions_before = api.versions()
        op_id = api.start(epochs=EPOCHS, max_retries=1)
        _, host_a, host_b = _placed(cluster, op_id)
        api.wait(op_id, lambda b: (b["progress"].get("epoch") or 0) >= 5, "epoch 5 on host A", timeout=120)
        wait_until(
            lambda: len(api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]) >= 3,
            30,
            "host A's epochs in the history",
        )
        host_a.kill(signal.SIGKILL)
        assert _shipped(cluster.backend, op_id) is None, "a checkpoint reached the backend"
        assert api.op(op_id)["status"] == "running", "the training ended before host A was killed"

        done = api.finished(op_id, timeout=300)
        assert done["status"] == "completed", done
        first_attempt, second_attempt = done["attempt_history"]
        assert (first_attempt["where"], first_attempt["outcome"]) == (f"host {host_a.url}", "requeued")
        assert first_attempt["error"]["code"] == "host_lost"
        assert (second_attempt["where"], second_attempt["outcome"]) == (f"host {host_b.url}", "completed")
        assert (second_attempt["from_checkpoint"], second_attempt["resumed_from_epoch"]) == (True, 0)
        history = api.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
        assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))  # each epoch once
        assert api.versions() == [*versions_before, max(versions_before, default=0) + 1]  # stored once
        logs = [
            line["message"]
            for line in api.http.get(f"/api/v1/operations/{op_id}/logs", params={"limit": 5000}).json()[
                "lines"
            ]
        ]
        assert f"operation {op_id}: retrying from scratch on host {host_b.url}" in logs, logs[-40:]
