"""Real backend and host processes on 127.0.0.1 for the host-mode e2e tests.

Each process gets its own working folder (no shared filesystem: the host downloads data from the
backend), a free port, a log file, and is killed at the end whatever happens. Every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.contracts.signing import sign_request
from tests.servers import REPO, free_port

SECRET = "e2e-host-secret"
START_DEADLINE_S = 60.0
#: The tests' intervals (and callback retry budget), far shorter than a user's, so that a test sees an end, a loss or a retry within
#: tenths of seconds; ``test_intervals=False`` runs a process on the product's defaults instead (what
#: ``make run`` gives a user; the benchmarks that time what a user waits for use them).
HOST_TEST_INTERVALS = {
    "stop_grace_s": "3",
    "heartbeat_interval_s": "0.5",
    "progress_persist_interval_s": "0.5",
    "poll_interval_s": "0.1",
    "callback_attempts": "3",
    "callback_initial_wait_s": "0.2",
    "callback_max_wait_s": "0.5",
    "callback_timeout_s": "20",
}
BACKEND_TEST_INTERVALS = {
    "progress_write_interval_s": "0.2",
    "host_health_interval_s": "0.3",
    "host_health_timeout_s": "1",
    "host_lease_s": "3",
    "host_poll_initial_s": "0.2",
    "host_poll_max_s": "0.5",
    "host_result_pull_delay_s": "1",
    "cancel_grace_s": "8",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_") and k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(REPO), MODELYARD_SHARED_SECRET=SECRET, **extra)
    return env


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Process:
    """One server process; ``ready()`` is its health probe."""

    def __init__(self, name: str, folder: Path, command: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.folder, self.command, self.env, self.port = name, folder, command, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = folder / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def launch(self) -> Process:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        if not self.alive():
            raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
        try:
            return (
                httpx.get(
                    self.url + "/health", headers=sign_request(SECRET, "GET", "/health"), timeout=2
                ).status_code
                == 200
            )
        except httpx.TransportError:
            return False

    def descendants(self) -> list[int]:
        """Every process under this one (its fork server and training children), from /proc."""
        return descendants(self.proc.pid) if self.alive() and self.proc is not None else []

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def host_process(
    folder: Path, *, capacity: int = 1, port: int | None = None, test_intervals: bool = True, **settings: str
) -> Process:
    port = port or free_port()
    values = {**(HOST_TEST_INTERVALS if test_intervals else {}), **settings}
    env = clean_env(**{f"MODELYARD_HOST_{k.upper()}": v for k, v in values.items()})
    command = [sys.executable, "-m", "host_service", "--port", str(port), "--work-dir", str(folder / "work")]
    command += ["--capacity", str(capacity)]
    return Process(f"host-{port}", folder, command, env, port)


def backend_process(
    folder: Path,
    hosts: Iterable[str],
    *,
    port: int | None = None,
    test_intervals: bool = True,
    **settings: str,
) -> Process:
    port = port or free_port()
    values = {
        "port": str(port),
        "database_url": f"sqlite:///{folder / 'var' / 'modelyard.db'}",
        "models_dir": str(folder / "models"),
        "data_dir": str(folder / "data"),
        "strategies_dir": str(REPO / "strategies"),
        "runs_dir": str(folder / "runs"),
        "hosts": ",".join(hosts),
        "callback_max_bytes": str(1 << 20),
        **(BACKEND_TEST_INTERVALS if test_intervals else {}),
        **settings,
    }
    env = clean_env(**{f"MODELYARD_{k.upper()}": v for k, v in values.items()})
    return Process(f"backend-{port}", folder, [sys.executable, "-m", "backend.server"], env, port)


@dataclass
class Cluster:
    api: Api
    backend: Process
    hosts: list[Process]

    def host_at(self, url: str) -> Process:
        return next(h for h in self.hosts if h.url == url)


@contextmanager
def two_host_cluster(
    root: Path, *, host_settings: dict[str, str], **backend_settings: str
) -> Iterator[Cluster]:
    """A backend and two one-slot hosts, started and healthy; every process killed at the end."""
    hosts = [host_process(root / "host-a", **host_settings), host_process(root / "host-b", **host_settings)]
    backend = backend_process(root / "backend", [h.url for h in hosts], **backend_settings)
    everything = [*hosts, backend]
    api = Api(backend)
    try:
        start_all(everything)
        wait_until(lambda: api.hosts_healthy(2), 20, "both hosts healthy")
        yield Cluster(api, backend, hosts)
    finally:
        api.close()
        for process in everything:
            process.kill()


def start_all(processes: list[Process]) -> None:
    """Launch together (they start in parallel), then wait for every health probe."""
    for process in processes:
        process.launch()
    for process in processes:
        wait_until(process.ready, START_DEADLINE_S, f"{process.name} to answer /health", every=0.2)


class Api:
    """The backend's REST API, as a user (curl) sees it."""

    def __init__(self, backend: Process) -> None:
        self.backend = backend
        self.http = httpx.Client(base_url=backend.url, timeout=20)

    def train(self, *, epochs: int = 2, mode: str | None = "host", **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "strategy": "trend_momentum",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "overrides": {"epochs": epochs, "early_stopping_patience": 0},
            **extra,
        }
        if mode is not None:
            body["execution_mode"] = mode
        return self.http.post("/api/v1/trainings", json=body)

    def start(self, **kwargs: Any) -> str:
        response = self.train(**kwargs)
        assert response.status_code == 202, response.text
        return str(response.json()["operation_id"])

    def op(self, op_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(f"/api/v1/operations/{op_id}").json()
        return body

    def wait(
        self, op_id: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def probe() -> bool:
            nonlocal seen
            seen = self.op(op_id)
            return check(seen)

        try:
            wait_until(probe, timeout, f"{op_id} to have {what}", every=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {seen}\n{self.backend.log()[-3000:]}") from None
        return seen

    def finished(self, op_id: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait(
            op_id, lambda b: b["status"] in ("completed", "failed", "cancelled"), "ended", timeout
        )

    def hosts_healthy(self, count: int) -> bool:
        hosts = self.http.get("/api/v1/system").json()["hosts"]
        return sum(1 for h in hosts if h["healthy"]) >= count

    def close(self) -> None:
        self.http.close()

    def versions(self, strategy: str = "trend_momentum", name: str = "EURUSD_1h") -> list[int]:
        response = self.http.get(f"/api/v1/models/{strategy}/{name}")
        return [v["version"] for v in response.json()["versions"]] if response.status_code == 200 else []


def retried_once(done: dict[str, Any], lost_code: str) -> dict[str, Any]:
    """The second attempt of ``done``, checked to be a training that completed after one automatic
    retry (meant to resume) of a first attempt lost with ``lost_code``."""
    assert done["status"] == "completed", (done["error"], done["attempt_history"])
    first, second = done["attempt_history"]
    assert (first["outcome"], first["error"]["code"]) == ("requeued", lost_code)
    assert (second["outcome"], second["trigger"], second["from_checkpoint"]) == (
        "completed",
        "automatic",
        True,
    )
    return dict(second)


def host_get(host: Process, path: str) -> httpx.Response:
    return httpx.get(host.url + path, headers=sign_request(SECRET, "GET", path), timeout=10)


def host_post(host: Process, path: str) -> httpx.Response:
    return httpx.post(host.url + path, headers=sign_request(SECRET, "POST", path), timeout=10)


def live_sessions(host: Process) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = host_get(host, "/training/sessions").json()["items"]
    return [s for s in items if s["status"] in ("starting", "running", "stopping")]


def descendants(pid: int) -> list[int]:
    """The pids below ``pid`` in the process tree (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
