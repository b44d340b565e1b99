"""Host mode end to end: one backend and two one-slot hosts as real processes on 127.0.0.1, each in its
own folder (the hosts download their data from the backend).

The tests run in file order as one story, each leaving the cluster as the next expects: trainings,
cancels and bad callbacks first; then the backend is killed and restarted; then both hosts are killed;
last, with no host left, host mode falls back to local. A short lease (3 s) and short polls keep the
failure cases fast; every wait has a deadline.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.contracts.handoff import payload_bytes
from shared.contracts.signing import sign
from tests.backend.host_fakes import result_payload, tiny_model
from tests.backend.test_host_callbacks import _evil_checkpoint
from tests.e2e.host_cluster import (
    SECRET,
    Cluster,
    host_get,
    host_post,
    live_sessions,
    running,
    two_host_cluster,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLBACK = "/api/v1/callbacks/host-result"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with two_host_cluster(tmp_path_factory.mktemp("cluster"), host_settings={}, max_retries="1") as started:
        yield started


def _stored_model(cluster: Cluster, op: dict[str, Any]) -> Path:
    return cluster.backend.folder / str(op["result"]["model"]["path"]) / "model.safetensors"


def test_a_host_training_completes_through_the_callback_with_the_hosts_exact_weights(
    cluster: Cluster,
) -> None:
    api = cluster.api
    op = api.finished(api.start(epochs=1))
    assert op["status"] == "completed", op
    assert (op["execution_mode"], op["attempts"]) == ("host", 1)
    stored = _stored_model(cluster, op)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == op["result"]["host_model_sha256"]
    host = cluster.host_at(op["host_url"])
    status = f"/training/status/{op['host_session_id']}"
    # The backend may acknowledge the result before the host has read the callback's answer.
    session = wait_until(
        lambda: (view := host_get(host, status).json())["callback_delivered"] and view,
        10,
        "the callback answered",
    )
    assert session["operation_id"] == op["operation_id"]
    assert session["result_acknowledged"]
    assert "pulling its result" not in cluster.backend.log()  # it came by the callback


def test_three_trainings_on_two_one_slot_hosts_never_share_a_slot(cluster: Cluster) -> None:
    api = cluster.api
    # Long enough that the first two still train when the third arrives (a finished training frees its
    # slot at once: one epoch could end before the third POST, and the third would never wait).
    ops = [api.start(epochs=30) for _ in range(3)]
    deadline = time.monotonic() + 90
    third_waited = False
    while not all(api.op(o)["status"] in ("completed", "failed") for o in ops):
        assert time.monotonic() < deadline, [api.op(o) for o in ops]
        assert all(len(live_sessions(h)) <= 1 for h in cluster.hosts)
        third_waited = third_waited or api.op(ops[2])["status"] == "pending"
        time.sleep(0.1)
    finished = [api.op(o) for o in ops]
    assert [o["status"] for o in finished] == ["completed"] * 3
    assert {o["host_url"] for o in finished} == {h.url for h in cluster.hosts}
    assert third_waited


@pytest.mark.parametrize("moment", ["pre-processing", "training"])
def test_cancel_reaches_the_host_and_frees_its_slot(cluster: Cluster, moment: str) -> None:
    api = cluster.api
    op_id = api.start(epochs=400)
    if moment == "training":
        api.wait(op_id, lambda b: b["progress"]["phase"] == "training", "the training phase")
    else:
        op = api.wait(op_id, lambda b: b["host_session_id"] is not None, "a host session")
        assert op["progress"]["phase"] != "training"
    assert api.http.post(f"/api/v1/operations/{op_id}/cancel").json()["status"] == "cancelling"
    op = api.finished(op_id, timeout=30)
    assert op["status"] == "cancelled", op
    host = cluster.host_at(op["host_url"])
    assert host_get(host, f"/training/status/{op['host_session_id']}").json()["status"] == "cancelled"
    wait_until(lambda: not live_sessions(host), 20, "the host slot to be free")


def test_bad_results_are_refused_unharmed_and_a_duplicate_is_stored_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    api = cluster.api
    op_id = api.start(epochs=400)
    op = api.wait(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    session_id = op["host_session_id"]
    model, config = tiny_model()
    (tmp_path / "model.pt").write_bytes(model)
    good = result_payload(op_id, session_id, tmp_path / "model.pt", config)
    tampered = json.loads(good)
    tampered["model"]["sha256"] = "0" * 64
    bad_sha = payload_bytes(tampered)
    (tmp_path / "evil.pt").write_bytes(_evil_checkpoint(tmp_path / "pwned"))
    evil = result_payload(op_id, session_id, tmp_path / "evil.pt", config)
    huge = good + b" " * (2 << 20)
    cases = {
        "bad signature": (good, sign("not-the-secret", good), 401),
        "stale timestamp": (good, sign(SECRET, good, timestamp=int(time.time()) - 3600), 401),
        "tampered body": (good.replace(b'"accuracy":0.5', b'"accuracy":1.0'), sign(SECRET, good), 401),
        "bad sha256": (bad_sha, sign(SECRET, bad_sha), 422),
        "oversize": (huge, sign(SECRET, huge), 413),
        "non-weights pickle": (evil, sign(SECRET, evil), 422),
    }

    def post(body: bytes, headers: dict[str, str]) -> httpx.Response:
        return api.http.post(CALLBACK, content=body, headers={"content-type": "application/json", **headers})

    for case, (body, headers, status) in cases.items():
        response = post(body, headers)
        assert response.status_code == status, (case, response.text)
        assert api.op(op_id)["status"] == "running", case
    assert not (tmp_path / "pwned").exists()
    assert api.versions("trend", "EURUSD_1h") == []
    first, second = post(good, sign(SECRET, good)), post(good, sign(SECRET, good))
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert second.json()["duplicate"] is True
    assert api.versions("trend", "EURUSD_1h") == [1]
    assert api.op(op_id)["status"] == "completed"
    host = cluster.host_at(op["host_url"])  # the real training there is no longer wanted
    host_post(host, f"/training/stop/{session_id}")
    wait_until(lambda: not live_sessions(host), 20, "the host slot to be free")


def test_a_result_the_backend_missed_while_down_is_pulled_after_it_returns_exactly_once(
    cluster: Cluster,
) -> None:
    api = cluster.api
    op_id = api.start(epochs=2)
    op = api.wait(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    host, session_id = cluster.host_at(op["host_url"]), op["host_session_id"]
    versions_before = api.versions()
    cluster.backend.kill(signal.SIGKILL)

    def session() -> dict[str, Any]:
        body: dict[str, Any] = host_get(host, f"/training/status/{session_id}").json()
        return body

    wait_until(lambda: session()["status"] == "completed", 60, "the host to finish training")
    wait_until(lambda: "not delivered" in host.log(), 30, "the callback retries to give up")
    assert session()["callback_delivered"] is False
    host_model = host_get(host, f"/training/result/{session_id}/model").content  # kept until acknowledged

    cluster.backend.launch()
    wait_until(cluster.backend.ready, 60, "the backend to come back", every=0.2)
    op = api.finished(op_id, timeout=30)
    assert op["status"] == "completed", op
    assert _stored_model(cluster, op).read_bytes() == host_model
    assert sorted(api.versions()) == sorted([*versions_before, op["result"]["model"]["version"]])
    wait_until(lambda: session()["result_acknowledged"], 10, "the result to be acknowledged")
    assert "pulling its result" in cluster.backend.log()


def test_a_host_trainings_own_log_lines_and_every_epoch_reach_the_operation(cluster: Cluster) -> None:
    api = cluster.api
    op = api.finished(api.start(epochs=3))
    assert op["status"] == "completed", op
    host = cluster.host_at(op["host_url"])
    session = host_get(host, f"/training/status/{op['host_session_id']}").json()
    assert [row["epoch"] for row in session["recent_epochs"]] == [1, 2, 3]
    assert any(line["logger"].startswith("shared.trainkit") for line in session["recent_logs"])

    def messages() -> list[str]:
        logs = api.http.get(f"/api/v1/operations/{op['operation_id']}/logs").json()["lines"]
        return [line["message"] for line in logs]

    # The host's last lines may follow the result callback: the follower relays them once it sees the
    # operation settled (its next poll), so they are waited for, with a deadline.
    last = "[host] training finished after 3 epochs"
    wait_until(lambda: any(m.startswith(last) for m in messages()), 10, "the host's last log line")
    assert any(m.startswith("[host] training on cpu") for m in messages()), messages()


def test_a_killed_host_is_lost_within_the_lease_and_retried_on_the_other_host(cluster: Cluster) -> None:
    api = cluster.api
    wait_until(lambda: api.hosts_healthy(2), 20, "both hosts healthy")
    op_id = api.start(epochs=400)
    first = api.wait(op_id, lambda b: b["progress"]["phase"] == "training", "training on a host")
    left_behind = cluster.host_at(first["host_url"]).descendants()
    assert left_behind, "the host runs its training in a child process"
    cluster.host_at(first["host_url"]).kill(signal.SIGKILL)
    killed_at = time.monotonic()
    second = api.wait(
        op_id, lambda b: b["attempts"] == 2 and b["host_session_id"] is not None, "a re-dispatch"
    )
    assert time.monotonic() - killed_at < 3 + 5  # the lease, one poll, one dispatch
    assert second["host_url"] != first["host_url"]
    assert any("host_lost" in w and "re-dispatched" in w for w in second["warnings"])
    # The killed host's fork server and training child stop too: nothing trains on for nobody.
    wait_until(lambda: not any(map(running, left_behind)), 15, "the killed host's processes to exit")

    api.wait(op_id, lambda b: b["progress"]["phase"] == "training", "training on the other host")
    cluster.host_at(second["host_url"]).kill(signal.SIGKILL)
    killed_at = time.monotonic()
    lost = api.finished(op_id, timeout=20)
    assert time.monotonic() - killed_at < 3 + 3
    assert (lost["status"], lost["error"]["code"]) == ("failed", "host_lost"), lost
    assert lost["error"]["details"]["host"] == second["host_url"]


def test_with_no_healthy_host_host_mode_falls_back_to_local_or_is_refused(cluster: Cluster) -> None:
    api = cluster.api
    wait_until(lambda: not api.hosts_healthy(1), 20, "no healthy host")
    started = time.monotonic()
    response = api.train(epochs=1)
    assert time.monotonic() - started < 2  # a request never waits on a dead host
    assert response.status_code == 202, response.text
    assert "fell back to local" in response.json()["warnings"][0]
    op = api.finished(response.json()["operation_id"])
    assert (op["status"], op["execution_mode"]) == ("completed", "local")
    refused = api.train(epochs=1, require_gpu=True)
    assert refused.status_code == 503
    assert "GPU" in refused.json()["error"]["message"]
