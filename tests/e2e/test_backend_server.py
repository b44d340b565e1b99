"""The backend as a real uvicorn process on 127.0.0.1 with the real training library.

Every wait has a deadline; every server started here is killed at the end.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.trainkit.storage.names import TEMP_PREFIX
from tests.e2e.host_cluster import retried_once
from tests.servers import backend_env, free_port, wait_healthy
from tests.trainkit.command_programs import alive

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START_DEADLINE_S = 180.0  # generous: the first start writes sample data, on a machine shared by many suites


class BackendProcess:
    def __init__(self, workdir: Path, data_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = backend_env(
            self.port,
            workdir,
            data_dir,
            MODELYARD_PROGRESS_WRITE_INTERVAL_S="0.2",
            MODELYARD_SSE_HEARTBEAT_S="1",
            **settings,
        )
        self.log = (workdir / f"server-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.server"],
            cwd=workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.url, self.proc, START_DEADLINE_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample candles written once for the module (the first server start writes them)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def servers(tmp_path: Path, data_dir: Path) -> Iterator[list[BackendProcess]]:
    started: list[BackendProcess] = []
    yield started
    for server in started:
        server.kill()


def start(servers: list[BackendProcess], workdir: Path, data_dir: Path, **settings: str) -> BackendProcess:
    server = BackendProcess(workdir, data_dir, **settings)
    servers.append(server)
    return server


def poll(client: httpx.Client, op_id: str, until: set[str], deadline_s: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    body: dict[str, Any] = {}
    while time.monotonic() < end:
        body = client.get(f"/api/v1/operations/{op_id}").json()
        if body["status"] in until:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{op_id} never reached {until}: {body}")


def submit(client: httpx.Client, epochs: int, **overrides: int) -> str:
    body = {
        "strategy": "trend_momentum",
        "symbol": "EURUSD",
        "timeframe": "1h",
        "overrides": {"epochs": epochs, **overrides},
    }
    response = client.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


def test_real_training_through_the_api_lands_a_model_and_streams_events(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        op_id = submit(client, epochs=2)
        events = []
        with client.stream("GET", f"/api/v1/operations/{op_id}/events", timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        assert events[-1]["status"] == "completed"
        percentages = [e["progress"]["percentage"] for e in events]
        assert percentages == sorted(percentages)
        done = poll(client, op_id, {"completed", "failed"})
        assert done["status"] == "completed", done
        model = done["result"]["model"]
        versions = client.get(f"/api/v1/models/{model['strategy']}/{model['name']}").json()["versions"]
        assert [v["version"] for v in versions] == [model["version"]]
        assert "accuracy" in done["result"]["test_metrics"]
        csv = client.get("/api/v1/data/EURUSD/1h/download")
        assert csv.headers["x-content-sha256"] == hashlib.sha256(csv.content).hexdigest()


def test_kill_9_mid_training_then_restart_without_retries_marks_it_interrupted_and_leaves_no_partial_model(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir, MODELYARD_MAX_RETRIES="0")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        op_id = submit(client, epochs=500)
        end = time.monotonic() + 60
        while client.get(f"/api/v1/operations/{op_id}").json()["progress"]["phase"] != "training":
            assert time.monotonic() < end, "training never started"
            time.sleep(0.05)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    # What a kill during the model save leaves behind: the store's hidden temp folder.
    half_written = tmp_path / "models" / "trend_momentum" / f"{TEMP_PREFIX}EURUSD_1h_v1-crashed"
    half_written.mkdir(parents=True)
    (half_written / "model.pt").write_bytes(b"half a model")

    restarted = start(servers, tmp_path, data_dir, MODELYARD_MAX_RETRIES="0")
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        op = client.get(f"/api/v1/operations/{op_id}").json()
        assert op["status"] == "failed"
        assert op["error"]["code"] == "interrupted"
        assert client.get("/api/v1/models").json() == []
    assert not half_written.exists()
    assert [p for p in (tmp_path / "models").rglob("*.pt")] == []


EVERY_EPOCH = {"MODELYARD_CHECKPOINT_MIN_INTERVAL_S": "0"}


def wait_for_epoch(client: httpx.Client, op_id: str, epoch: int, deadline_s: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    body: dict[str, Any] = {}
    while time.monotonic() < end:
        body = client.get(f"/api/v1/operations/{op_id}").json()
        if (body["progress"]["epoch"] or 0) >= epoch:
            return body
        assert body["status"] in {"pending", "running"}, body
        time.sleep(0.05)
    raise AssertionError(f"{op_id} never reached epoch {epoch}: {body}")


def epochs_of(client: httpx.Client, op_id: str) -> list[int]:
    history = client.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    return [int(row["epoch"]) for row in history]


def test_kill_9_after_epoch_5_then_restart_resumes_from_the_checkpoint_and_completes(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir, **EVERY_EPOCH)
    epochs = 40
    with httpx.Client(base_url=server.url, timeout=10) as client:
        op_id = submit(client, epochs=epochs, early_stopping_patience=0)
        wait_for_epoch(client, op_id, 6)  # epoch 6 under way: epoch 5 finished and saved
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)

    restarted = start(servers, tmp_path, data_dir, **EVERY_EPOCH)
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        done = poll(client, op_id, {"completed", "failed", "cancelled"}, deadline_s=300)
        second = retried_once(done, "interrupted")
        assert second["resumed_from_epoch"] >= 5
        assert done["result"]["resumed_from_epoch"] == second["resumed_from_epoch"]
        assert epochs_of(client, op_id) == list(range(1, epochs + 1))
        logs = client.get(f"/api/v1/operations/{op_id}/logs").json()["lines"]
        assert any(
            f"retrying from epoch {second['resumed_from_epoch']} on local backend" in x["message"]
            for x in logs
        )


#: No checkpoint within a training of these tests: a fault before the first one.
NEVER = {"MODELYARD_CHECKPOINT_EVERY_EPOCHS": "100000"}


def test_kill_9_before_the_first_checkpoint_then_restart_retries_from_scratch_and_says_so(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir, **NEVER)
    epochs = 30
    with httpx.Client(base_url=server.url, timeout=10) as client:
        op_id = submit(client, epochs=epochs, early_stopping_patience=0)
        wait_for_epoch(client, op_id, 6)
        # The lost attempt's epochs are stored (a kill -9 loses the rows still on their way).
        wait_until_true(lambda: len(epochs_of(client, op_id)) >= 3, "three epochs stored")
    assert not list((tmp_path / "runs" / op_id / "checkpoints").glob("epoch-*")), "a checkpoint was written"
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)

    restarted = start(servers, tmp_path, data_dir, **NEVER)
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        done = poll(client, op_id, {"completed", "failed", "cancelled"}, deadline_s=300)
        second = retried_once(done, "interrupted")
        assert second["resumed_from_epoch"] == 0  # from scratch: there was no checkpoint
        assert "resumed_from_epoch" not in done["result"]
        assert epochs_of(client, op_id) == list(range(1, epochs + 1))  # the lost epochs replaced, not doubled
        logs = [x["message"] for x in logs_of(client, op_id)]
        assert any(f"operation {op_id}: retrying from scratch on local backend" in m for m in logs), logs[
            -30:
        ]
        versions = client.get("/api/v1/models/trend_momentum/EURUSD_1h").json()["versions"]
        assert [v["version"] for v in versions] == [1]


def wait_until_true(check: Any, what: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_kill_9_during_a_command_training_then_restart_resumes_the_program_from_its_checkpoint(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir, **EVERY_EPOCH)
    steps = 8000
    params = {"steps": steps, "checkpoint_every": 500, "val_every": 1000}
    body = {"workload": "command", "command": {"name": "toy", "params": params}}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post("/api/v1/trainings", json=body)
        assert response.status_code == 202, response.text
        op_id = response.json()["operation_id"]
        end = time.monotonic() + 180
        # A checkpoint kept, and the steps up to it stored: a kill -9 loses the rows still on their way
        # to the database, and the history kept across attempts is what this test checks.
        while not (
            any("checkpoint kept at step" in x["message"] for x in logs_of(client, op_id))
            and max(_steps(client, op_id), default=0) >= 500
        ):
            assert time.monotonic() < end, "no checkpoint was kept within 180 s"
            time.sleep(0.2)
    program = json.loads((tmp_path / "runs" / op_id / "program.json").read_text())["pid"]
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)

    restarted = start(servers, tmp_path, data_dir, **EVERY_EPOCH)
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        done = poll(client, op_id, {"completed", "failed", "cancelled"}, deadline_s=300)
        assert done["status"] == "completed", done
        first, second = done["attempt_history"]
        assert (first["outcome"], first["error"]["code"]) == ("requeued", "interrupted")
        assert (second["outcome"], second["from_checkpoint"]) == ("completed", True)
        assert second["resumed_from_epoch"] >= 500
        assert second["resumed_from_epoch"] % 500 == 0  # the step the program said it checkpointed
        output = (tmp_path / "runs" / op_id / "output.log").read_text()
        assert "resumed from step" in output  # the program itself says where it continued
        steps_seen = _steps(client, op_id)
        assert steps_seen[-1] == steps
        assert steps_seen == sorted(set(steps_seen))  # each step once, the first attempt's kept
        assert steps_seen[0] <= 500, steps_seen[:5]
        models = client.get("/api/v1/models").json()
        assert any(m["strategy"] == "toy" for m in models), models
    assert not alive(program)  # the first attempt's program did not outlive it


def logs_of(client: httpx.Client, op_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/api/v1/operations/{op_id}/logs").json()["lines"])


def test_a_cancelled_training_retried_resumes_from_its_last_checkpoint(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir, **EVERY_EPOCH)
    epochs = 30
    with httpx.Client(base_url=server.url, timeout=10) as client:
        op_id = submit(client, epochs=epochs, early_stopping_patience=0)
        wait_for_epoch(client, op_id, 5)  # epoch 5 under way: epoch 4 finished and saved
        assert client.post(f"/api/v1/operations/{op_id}/cancel").status_code in (200, 202)
        cancelled = poll(client, op_id, {"cancelled", "completed", "failed"})
        assert cancelled["status"] == "cancelled", cancelled

        response = client.post(f"/api/v1/operations/{op_id}/retry")
        assert response.status_code == 202, response.text
        done = poll(client, op_id, {"completed", "failed", "cancelled"}, deadline_s=300)

        assert done["status"] == "completed", done
        first, second = done["attempt_history"]
        assert first["outcome"] == "cancelled"
        assert (second["trigger"], second["outcome"]) == ("manual", "completed")
        assert second["resumed_from_epoch"] >= 4
        assert epochs_of(client, op_id) == list(range(1, epochs + 1))


def _steps(client: httpx.Client, op_id: str) -> list[int]:
    return [int(r["step"]) for r in client.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]]


def test_sigterm_ends_open_event_streams_and_the_server_exits(
    servers: list[BackendProcess], tmp_path: Path, data_dir: Path
) -> None:
    server = start(servers, tmp_path, data_dir)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        op_id = submit(client, epochs=500)
        with client.stream("GET", f"/api/v1/operations/{op_id}/events", timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("event: state")
            server.proc.send_signal(signal.SIGTERM)
            for _ in lines:  # drains until the server closes the stream
                pass
    # uvicorn re-raises the captured SIGTERM once shutdown is complete, so -15 is a clean exit too.
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    server.log.flush()
    log = next(tmp_path.glob(f"server-{server.port}.log")).read_text()
    assert "Application shutdown complete" in log
    assert "did not stop within" not in log
    with httpx.Client(base_url=server.url, timeout=10) as client, pytest.raises(httpx.TransportError):
        client.get("/health")
