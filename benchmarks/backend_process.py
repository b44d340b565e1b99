"""Start the backend as a real uvicorn process on a free 127.0.0.1 port (shared by the API benchmarks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.servers import backend_env, free_port, wait_healthy

START_DEADLINE_S = 60.0


class BackendProcess:
    def __init__(self, workdir: Path, data_dir: Path, **env_overrides: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = backend_env(self.port, workdir, data_dir, MODELYARD_LOG_LEVEL="WARNING", **env_overrides)
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.server"],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(self.url, self.proc, START_DEADLINE_S)
        except AssertionError as exc:
            self.stop()
            raise RuntimeError(
                f"backend did not become healthy: {exc}; see {workdir / 'server.log'}"
            ) from exc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
