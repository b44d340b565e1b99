"""Start the backend as a real uvicorn process on a free 127.0.0.1 port (shared by the API benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackendProcess:
    def __init__(self, workdir: Path, data_dir: Path, **env_overrides: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "MODELYARD_PORT": str(self.port),
            "MODELYARD_DATABASE_URL": f"sqlite:///{workdir / 'var' / 'modelyard.db'}",
            "MODELYARD_MODELS_DIR": str(workdir / "models"),
            "MODELYARD_DATA_DIR": str(data_dir),
            "MODELYARD_STRATEGIES_DIR": str(REPO / "strategies"),
            "MODELYARD_RUNS_DIR": str(workdir / "runs"),
            "MODELYARD_LOG_LEVEL": "WARNING",
            **env_overrides,
        }
        env.pop("DATABASE_URL", None)
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.server"],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"backend exited with {self.proc.returncode}; see {workdir / 'server.log'}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("backend did not become healthy within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
