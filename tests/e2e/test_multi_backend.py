"""Several backends on one PostgreSQL: two backends and one host service as real processes on 127.0.0.1.

The backends share the database (a fresh one on the machine's PostgreSQL) and one models and data
folder (the shared volume of a deployment), as N replicas behind a load balancer would. What must hold:
every operation has one owner backend and only it follows the operation; a killed owner's host training
is adopted by the other backend within the instance lease and completed with exactly one model version;
trainings submitted to both backends each train exactly once; the same result ingested by both backends
at once is stored once. Short leases keep the failure cases to seconds; every wait has a deadline.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from shared.contracts.signing import sign
from tests.backend.databases import postgres_database
from tests.backend.host_fakes import result_payload, tiny_model
from tests.e2e.host_cluster import (
    SECRET,
    Api,
    Process,
    backend_process,
    host_get,
    host_post,
    host_process,
    live_sessions,
    wait_until,
)

# Three servers importing torch on a loaded 2-core machine can take minutes to start: the per-test
# limit (which counts the module fixture's setup) is raised; every wait inside still has its deadline.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

CALLBACK = "/api/v1/callbacks/host-result"
# Long enough that a loaded machine renews it in time; a kill -9 on this machine is seen at once
# anyway (the pid is gone), so the takeover does not wait for it.
INSTANCE_LEASE_S = 10.0
START_DEADLINE_S = 180.0  # a loaded 2-core machine imports torch slowly


@dataclass
class Cluster:
    backends: list[Process]
    apis: list[Api]
    host: Process
    db: Engine

    def owner_of(self, op_id: str) -> str | None:
        with self.db.connect() as conn:
            owner = conn.execute(text("SELECT owner_id FROM operations WHERE id = :id"), {"id": op_id})
            return owner.scalar_one_or_none()

    def instance_of(self, backend: Process) -> str | None:
        """The lease row of ``backend`` (found by its pid)."""
        assert backend.proc is not None
        with self.db.connect() as conn:
            rows = conn.execute(
                text("SELECT id FROM backend_instances WHERE pid = :pid"), {"pid": backend.proc.pid}
            )
            return rows.scalar_one_or_none()

    def stored_version(self, op_id: str) -> int | None:
        with self.db.connect() as conn:
            rows = conn.execute(
                text("SELECT version FROM operation_results WHERE operation_id = :id"), {"id": op_id}
            )
            return rows.scalar_one_or_none()

    def sweep_owner(self, sweep_id: str) -> str | None:
        with self.db.connect() as conn:
            owner = conn.execute(text("SELECT owner_id FROM sweeps WHERE id = :id"), {"id": sweep_id})
            return owner.scalar_one_or_none()

    def version_folders(self, strategy: str, name: str) -> list[str]:
        folder = self.backends[0].folder.parent / "shared" / "models" / strategy
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(f"{name}_v") and p.is_dir())


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    yield from postgres_database()


def _backend(root: Path, label: str, host: Process, database_url: str) -> Process:
    backend = backend_process(root / label, [host.url])
    shared = root / "shared"
    backend.env.update(
        MODELYARD_DATABASE_URL=database_url,
        MODELYARD_MODELS_DIR=str(shared / "models"),
        MODELYARD_DATA_DIR=str(shared / "data"),
        MODELYARD_INSTANCE_LEASE_S=str(INSTANCE_LEASE_S),
        MODELYARD_HOST_HEALTH_TIMEOUT_S="10",  # a loaded machine is slow, not down
        MODELYARD_SWEEP_POLL_INTERVAL_S="1",  # how soon a dead owner's sweep is adopted
    )
    return backend


def _start(process: Process) -> None:
    process.launch()
    wait_until(process.ready, START_DEADLINE_S, f"{process.name} to answer /health", every=0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("multi")
    host = host_process(root / "host", capacity=2)
    backends = [_backend(root, label, host, database_url) for label in ("backend-a", "backend-b")]
    apis = [Api(b) for b in backends]
    db = create_engine(database_url)
    try:
        # The host and the first backend together; the second after it (the first writes the sample
        # data into the shared folder once).
        for process in (host, backends[0]):
            process.launch()
        for process in (host, backends[0]):
            wait_until(process.ready, START_DEADLINE_S, f"{process.name} to answer /health", every=0.2)
        _start(backends[1])
        for api in apis:
            wait_until(lambda api=api: api.hosts_healthy(1), 20, "the host healthy")  # type: ignore[misc]
        yield Cluster(backends, apis, host, db)
    finally:
        for api in apis:
            api.close()
        for process in [*backends, host]:
            process.kill()
        db.dispose()


def _sessions_by_operation(host: Process) -> Counter[str]:
    items: list[dict[str, Any]] = host_get(host, "/training/sessions").json()["items"]
    return Counter(str(s["operation_id"]) for s in items)


def test_ten_trainings_submitted_to_both_backends_each_train_exactly_once(cluster: Cluster) -> None:
    a, b = cluster.apis
    before = set(a.versions())
    ops = [(a if i % 2 == 0 else b).start(epochs=1) for i in range(10)]
    done = [a.finished(op_id, timeout=180) for op_id in ops]
    assert [op["status"] for op in done] == ["completed"] * 10, done
    versions = [op["result"]["model"]["version"] for op in done]
    assert len(set(versions)) == 10  # one version each, none shared
    assert set(a.versions()) - before == set(versions) == set(b.versions()) - before  # one shared store
    sessions = _sessions_by_operation(cluster.host)
    assert {op_id: sessions[op_id] for op_id in ops} == dict.fromkeys(ops, 1)  # each trained once
    for op_id, version in zip(ops, versions, strict=True):
        assert cluster.stored_version(op_id) == version
    owners = {cluster.owner_of(op_id) for op_id in ops}
    assert owners == {cluster.instance_of(backend) for backend in cluster.backends}


def test_the_same_result_ingested_by_both_backends_at_once_is_stored_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    a, b = cluster.apis
    op_id = a.start(epochs=400)
    op = a.wait(op_id, lambda body: body["host_session_id"] is not None, "a host session")
    session_id = op["host_session_id"]
    model, config = tiny_model()
    (tmp_path / "model.pt").write_bytes(model)
    body = result_payload(op_id, session_id, tmp_path / "model.pt", config)
    answers: dict[int, httpx.Response] = {}
    go = threading.Barrier(2)

    def deliver(index: int, api: Api) -> None:
        headers = {"content-type": "application/json", **sign(SECRET, body)}
        go.wait(timeout=10)
        answers[index] = api.http.post(CALLBACK, content=body, headers=headers)

    threads = [threading.Thread(target=deliver, args=(i, api)) for i, api in enumerate((a, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [answers[i].status_code for i in (0, 1)] == [200, 200], [answers[i].text for i in answers]
    outcomes = [answers[i].json() for i in (0, 1)]
    assert sorted(o["duplicate"] for o in outcomes) == [False, True], outcomes
    assert outcomes[0]["model"]["version"] == outcomes[1]["model"]["version"] == 1
    assert cluster.version_folders("trend", "EURUSD_1h") == ["EURUSD_1h_v1"]
    assert a.versions("trend", "EURUSD_1h") == [1] == b.versions("trend", "EURUSD_1h")
    assert cluster.stored_version(op_id) == 1
    assert a.op(op_id)["status"] == "completed"
    host_post(cluster.host, f"/training/stop/{session_id}")  # the real training is no longer wanted
    wait_until(lambda: not live_sessions(cluster.host), 20, "the host slots to be free")


def test_a_killed_owner_s_host_training_is_adopted_and_completed_once(cluster: Cluster) -> None:
    a, b = cluster.apis
    backend_a, backend_b = cluster.backends
    before = a.versions()
    op_id = a.start(epochs=20)
    op = a.wait(op_id, lambda body: (body["progress"].get("epoch") or 0) >= 1, "its first epoch on the host")
    session_id = op["host_session_id"]
    owner_a, owner_b = cluster.instance_of(backend_a), cluster.instance_of(backend_b)
    assert cluster.owner_of(op_id) == owner_a
    # Only the owner follows it: B never polls a session it does not own.
    assert f"re-attaching to session {session_id}" not in backend_b.log()

    backend_a.kill(signal.SIGKILL)
    wait_until(lambda: cluster.owner_of(op_id) == owner_b, INSTANCE_LEASE_S + 10, "B to adopt the operation")
    wait_until(
        lambda: f"re-attaching to session {session_id}" in backend_b.log(), 10, "B to follow the session"
    )
    done = b.finished(op_id, timeout=300)
    assert done["status"] == "completed", done
    version = done["result"]["model"]["version"]
    assert sorted(b.versions()) == sorted([*before, version])  # exactly one new version
    assert cluster.stored_version(op_id) == version
    assert _sessions_by_operation(cluster.host)[op_id] == 1  # adopted, not trained again

    _start(backend_a)  # the next test (if any) finds both backends again
    assert cluster.owner_of(op_id) == owner_b


def test_a_killed_owner_s_sweep_is_adopted_and_finished_by_the_other_backend(cluster: Cluster) -> None:
    a, b = cluster.apis
    backend_a, backend_b = cluster.backends
    base = {"strategy": "trend_momentum", "symbol": "EURUSD", "timeframe": "1h", "execution_mode": "host"}
    body = {
        "base": {**base, "overrides": {"epochs": 40, "early_stopping_patience": 0}},
        "space": {"overrides.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "objective": {"metric": "val_loss"},
        "n_trials": 3,
        "parallelism": 1,
        "pruner": "none",
    }
    started = a.http.post("/api/v1/sweeps", json=body)
    assert started.status_code == 202, started.text
    sweep_id = started.json()["sweep_id"]

    def view() -> dict[str, Any]:
        seen: dict[str, Any] = b.http.get(f"/api/v1/sweeps/{sweep_id}").json()
        return seen

    # 40 epochs a trial: host trainings start warm and run fast, and a first trial ended before the
    # kill would stay A's.
    wait_until(lambda: any(t["intermediate"] for t in view()["trials"]), 180, "a trial's first epoch")
    owner_a, owner_b = cluster.instance_of(backend_a), cluster.instance_of(backend_b)
    assert cluster.sweep_owner(sweep_id) == owner_a
    assert {cluster.owner_of(t["operation_id"]) for t in view()["trials"]} == {owner_a}  # B drives none

    backend_a.kill(signal.SIGKILL)
    wait_until(
        lambda: cluster.sweep_owner(sweep_id) == owner_b, INSTANCE_LEASE_S + 10, "B to adopt the sweep"
    )
    done = wait_until(
        lambda: (v := view())["status"] in ("completed", "failed", "cancelled") and v, 400, "the end"
    )
    assert done["status"] == "completed", done
    # The host kept training the trial A followed: B adopted it, nothing was interrupted (a kill between
    # asking Optuna and recording a trial's operation would show as one interrupted trial, replaced).
    assert done["counts"]["complete"] == 3, done
    assert set(done["counts"]) <= {"complete", "interrupted"}, done
    sessions = _sessions_by_operation(cluster.host)
    trial_ops = [t["operation_id"] for t in done["trials"] if t["operation_id"]]
    assert all(sessions[op_id] == 1 for op_id in trial_ops)  # each trial trained once
    assert {cluster.owner_of(op_id) for op_id in trial_ops} == {owner_b}
    model = done["best"]["model"]
    resolved = b.http.get(f"/api/v1/models/{model['strategy']}/{model['name']}/versions/{done['best_alias']}")
    assert resolved.json()["version"] == model["version"]

    _start(backend_a)  # the next test (if any) finds both backends again


def test_a_signed_callback_replayed_to_the_other_backend_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster.apis
    model, config = tiny_model()
    (tmp_path / "model.pt").write_bytes(model)
    body = result_payload("op_unknown", "hs_unknown", tmp_path / "model.pt", config)
    headers = {"content-type": "application/json", **sign(SECRET, body)}
    first = a.http.post(CALLBACK, content=body, headers=headers)
    assert first.status_code == 404, first.text  # verified, remembered, then: no such operation
    replayed = b.http.post(CALLBACK, content=body, headers=headers)  # captured and sent to the other replica
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["error"]["code"] == "replayed"
