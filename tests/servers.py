"""Real servers on 127.0.0.1 for tests and benchmarks: a free port, the backend's environment, a health wait.

Every wait has a deadline; the callers own their processes and stop them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backend_env(port: int, workdir: Path, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment plus a backend on ``port`` keeping its state under ``workdir``.

    ``settings`` add or replace variables; a generic ``DATABASE_URL`` is dropped so it cannot win.
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MODELYARD_PORT": str(port),
        "MODELYARD_DATABASE_URL": f"sqlite:///{workdir / 'var' / 'modelyard.db'}",
        "MODELYARD_MODELS_DIR": str(workdir / "models"),
        "MODELYARD_DATA_DIR": str(data_dir),
        "MODELYARD_STRATEGIES_DIR": str(REPO / "strategies"),
        "MODELYARD_RUNS_DIR": str(workdir / "runs"),
        **settings,
    }
    env.pop("DATABASE_URL", None)
    return env


def wait_healthy(
    url: str,
    proc: subprocess.Popen[bytes],
    deadline_s: float,
    *,
    every: float = 0.1,
    log: Path | None = None,
) -> None:
    """Return once ``url``/health answers 200; AssertionError if ``proc`` exits or the deadline passes.

    The message ends with the last 2000 characters of ``log`` when one is given.
    """
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server at {url} exited with {proc.returncode}{_log_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(every)
    raise AssertionError(f"server at {url} was not healthy within {deadline_s} s{_log_tail(log)}")


def _log_tail(log: Path | None) -> str:
    return "" if log is None else ":\n" + log.read_text(errors="replace")[-2000:]
