"""The host as a real uvicorn process on 127.0.0.1 against a fake backend server: a real tiny training,
the signed callback, stop, kill -9 of the training child, and a host restart that keeps the result.
Each training runs in the worker forked and warmed up before it; the host's exit leaves no process."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from safetensors.torch import load as load_safetensors

from shared.contracts.handoff import decode_inline_model
from shared.contracts.host import ResultPayload
from shared.contracts.signing import SignatureError, asgi_target, verify, verify_request
from shared.trainkit.model_file import load_weights, read_metadata
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from tests.e2e.host_cluster import descendants, running
from tests.host_service.fakes import SigningAuth

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "e2e-secret"
REPO = Path(__file__).resolve().parents[2]
STRATEGY = (REPO / "strategies" / "trend_momentum.yaml").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class FakeBackendServer:
    """Serves a candle CSV (signed requests only) and records verified result callbacks."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.callbacks: list[bytes] = []
        self.csv = (data_dir / "EURUSD_1h.csv").read_bytes()
        app = FastAPI()

        @app.get("/api/v1/data/{symbol}/{timeframe}/download")
        async def download(symbol: str, timeframe: str, request: Request) -> Response:
            try:
                target = asgi_target(request.scope)
                verify_request([SECRET], dict(request.headers), "GET", target, await request.body())
            except SignatureError as exc:
                raise HTTPException(401, exc.reason) from exc
            return Response(self.csv, media_type="text/csv")

        @app.post("/api/v1/callbacks/host-result")
        async def callback(request: Request) -> dict[str, bool]:
            body = await request.body()
            self._verify(request, body)
            self.callbacks.append(body)
            return {"ok": True}

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @staticmethod
    def _verify(request: Request, body: bytes) -> None:
        try:
            verify([SECRET], dict(request.headers), body)
        except SignatureError as exc:
            raise HTTPException(401, exc.reason) from exc

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> FakeBackendServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, "the fake backend to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class HostProcess:
    def __init__(self, work_dir: Path, log: Path) -> None:
        self.work_dir, self.log, self.port = work_dir, log, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", auth=SigningAuth(SECRET), timeout=10
        )

    def start(self) -> None:
        env = {
            **os.environ,
            "MODELYARD_SHARED_SECRET": SECRET,
            "MODELYARD_HOST_STOP_GRACE_S": "3",
            "MODELYARD_HOST_HEARTBEAT_INTERVAL_S": "0.5",
            "MODELYARD_HOST_PROGRESS_PERSIST_INTERVAL_S": "0.5",
        }
        command = [
            sys.executable,
            "-m",
            "host_service",
            "--port",
            str(self.port),
            "--work-dir",
            str(self.work_dir),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 60, f"the host to answer /health (log: {self.log})")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"host exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
            )
        try:
            return self.client.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def run_briefly(self, backend: FakeBackendServer, operation_id: str) -> int:
        """Start a long training, stop it once it trains; the pid of the process it ran in."""
        session_id = self.start_training(backend, operation_id, epochs=5000, early_stopping_patience=0)
        view = self.wait_status(session_id, {"running"}, 60)
        wait_until(
            lambda: (self.status(session_id).get("progress") or {}).get("phase") == "training", 60, "training"
        )
        self.client.post(f"/training/stop/{session_id}")
        assert self.wait_status(session_id, {"cancelled"}, 30)["error"]["code"] == "cancelled"
        pid: int = view["worker_pid"]
        return pid

    def idle_worker(self) -> int:
        """The pid of the warm worker waiting for the next session (waits for it to be forked)."""
        found: int = wait_until(lambda: _one(self._idle_workers()), 60, "one idle training worker")
        return found

    def _idle_workers(self) -> set[int]:
        """The fork server's children that run no session (the host lists every session's pid)."""
        assert self.process is not None
        listed = self.client.get("/training/sessions").json()["items"]
        sessions = {s.get("worker_pid") for s in listed}
        return {
            pid for pid in _fork_server_children(self.process.pid) if pid not in sessions and running(pid)
        }

    def status(self, session_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.client.get(f"/training/status/{session_id}").json()
        return view

    def wait_status(self, session_id: str, statuses: set[str], timeout: float) -> dict[str, Any]:
        view: dict[str, Any] = wait_until(
            lambda: (v := self.status(session_id))["status"] in statuses and v,
            timeout,
            f"status in {statuses}",
        )
        return view

    def start_training(self, backend: FakeBackendServer, operation_id: str, **overrides: int) -> str:
        body = {
            "operation_id": operation_id,
            "callback_url": backend.url("/api/v1/callbacks/host-result"),
            "datasets": [
                {
                    "filename": "EURUSD_1h.csv",
                    "sha256": hashlib.sha256(backend.csv).hexdigest(),
                    "url": backend.url("/api/v1/data/EURUSD/1h/download"),
                }
            ],
            "request": {
                "strategy_name": "trend_momentum",
                "strategy_yaml": STRATEGY,
                "symbols": ["EURUSD"],
                "timeframes": ["1h"],
                "overrides": {"seed": 1, **overrides},
            },
        }
        response = self.client.post("/training/start", json=body)
        assert response.status_code == 202, response.text
        session_id: str = response.json()["session_id"]
        return session_id


def _fork_server_children(host_pid: int) -> set[int]:
    """Every process the host's fork server forked: its idle worker and its sessions' children."""
    servers = [pid for pid in descendants(host_pid) if b"forkserver" in _cmdline(pid)]
    return {pid for server in servers for pid in _children(server)}


def _children(pid: int) -> list[int]:
    return [child for child in descendants(pid) if _parent(child) == pid]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _one(pids: set[int]) -> int | None:
    return next(iter(pids)) if len(pids) == 1 else None


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeBackendServer]:
    data_dir = tmp_path_factory.mktemp("backend-data")
    write_sample_data(data_dir, symbols=("EURUSD",), timeframes=("1h",), rows=1500)
    with FakeBackendServer(data_dir) as server:
        yield server


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    folder = tmp_path_factory.mktemp("host")
    process = HostProcess(folder / "work", folder / "host.log")
    process.start()
    try:
        yield process
    finally:
        process.kill()
        process.client.close()


@pytest.fixture(scope="module")
def trained(host: HostProcess, backend: FakeBackendServer) -> tuple[str, bytes]:
    session_id = host.start_training(backend, "op_happy", epochs=2)
    wait_until(lambda: backend.callbacks, 120, f"the result callback (log: {host.log})")
    return session_id, backend.callbacks[0]


def test_real_training_is_called_back_with_weights_that_load(
    host: HostProcess, trained: tuple[str, bytes]
) -> None:
    session_id, body = trained
    payload = ResultPayload.model_validate_json(body)
    assert (payload.operation_id, payload.session_id) == ("op_happy", session_id)
    assert payload.model.encoding == "gzip+base64"
    model_bytes = decode_inline_model(payload.model.model_dump(), max_size=32 << 20)
    checkpoint = load_weights(model_bytes)
    assert checkpoint.state_dict
    assert read_metadata(model_bytes)["format"] == "modelyard"  # model.safetensors, not the old model.pt
    assert set(load_safetensors(model_bytes)) == set(checkpoint.state_dict)  # plain safetensors reads it
    assert payload.result["epochs_trained"] <= 2
    view = host.wait_status(session_id, {"completed"}, 10)
    assert view["device"] == "cpu"
    assert view["progress"]["percentage"] == 100.0


def test_stop_mid_training_frees_the_slot(
    host: HostProcess, backend: FakeBackendServer, trained: object
) -> None:
    session_id = host.start_training(backend, "op_stop", epochs=5000, early_stopping_patience=0)
    wait_until(
        lambda: (host.status(session_id).get("progress") or {}).get("phase") == "training", 60, "training"
    )
    host.client.post(f"/training/stop/{session_id}")
    view = host.wait_status(session_id, {"cancelled"}, 30)
    assert view["error"]["code"] == "cancelled"
    assert host.client.get("/health").json()["sessions_in_use"] == 0


def test_a_session_runs_in_the_idle_worker_and_another_is_forked_for_the_next(
    host: HostProcess, backend: FakeBackendServer, trained: object
) -> None:
    for operation_id in ("op_warm", "op_warm_again"):
        idle = host.idle_worker()
        assert host.run_briefly(backend, operation_id) == idle
        assert host.idle_worker() != idle  # a new one, forked for the next session


def test_kill_9_of_the_training_child_is_worker_crashed(
    host: HostProcess, backend: FakeBackendServer, trained: object
) -> None:
    session_id = host.start_training(backend, "op_crash", epochs=5000, early_stopping_patience=0)
    pid = wait_until(lambda: host.status(session_id).get("worker_pid"), 60, "the worker pid")
    os.kill(pid, signal.SIGKILL)
    view = host.wait_status(session_id, {"failed"}, 30)
    assert view["error"]["code"] == "worker_crashed"
    assert view["error"]["details"]["exit_code"] == -signal.SIGKILL
    assert host.client.get("/health").json()["sessions_in_use"] == 0
    # The next training runs on a fresh warm worker, forked before it started.
    idle = host.idle_worker()
    assert idle != pid
    assert host.run_briefly(backend, "op_after_crash") == idle


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "killed"])
def test_the_hosts_end_leaves_no_process_behind(tmp_path: Path, sig: int) -> None:
    """A host shut down (SIGTERM) ends its idle worker; a host killed outright leaves one that sees its
    pipe close and exits, and the fork server with it: no orphan either way."""
    host = HostProcess(tmp_path / "work", tmp_path / "host.log")
    host.start()
    try:
        assert host.process is not None
        idle = host.idle_worker()
        below = descendants(host.process.pid)
        assert idle in below
        host.kill(sig)
        wait_until(lambda: not any(running(pid) for pid in below), 30, f"no process left of {below}")
    finally:
        host.kill()
        host.client.close()


def test_host_restart_keeps_and_resends_the_unacknowledged_result(
    host: HostProcess, backend: FakeBackendServer, trained: tuple[str, bytes]
) -> None:
    session_id, body = trained
    host.kill()
    callbacks_before = len(backend.callbacks)
    host.start()
    wait_until(lambda: len(backend.callbacks) > callbacks_before, 30, "the result to be sent again")
    again = ResultPayload.model_validate_json(backend.callbacks[-1])
    assert again.model.sha256 == ResultPayload.model_validate_json(body).model.sha256
    assert host.client.get(f"/training/result/{session_id}").status_code == 200
    assert host.client.post(f"/training/result/{session_id}/ack").status_code == 200
    assert host.client.get(f"/training/result/{session_id}").status_code == 409
