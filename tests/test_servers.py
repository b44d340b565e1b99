"""The shared real-server harness fails fast and names why; its environment cannot be overridden by accident."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import backend_env, free_port, wait_healthy


def test_wait_healthy_fails_with_the_exit_code_and_log_when_the_server_exits(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("boom: port in use")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(timeout=30)
    with pytest.raises(AssertionError, match=r"exited with 3:\nboom: port in use"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", proc, deadline_s=30, log=log)


def test_backend_env_drops_database_url_and_applies_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    env = backend_env(8123, tmp_path, tmp_path / "data", MODELYARD_LOG_LEVEL="WARNING")
    assert "DATABASE_URL" not in env
    assert env["MODELYARD_PORT"] == "8123"
    assert env["MODELYARD_DATABASE_URL"] == f"sqlite:///{tmp_path / 'var' / 'modelyard.db'}"
    assert env["MODELYARD_DATA_DIR"] == str(tmp_path / "data")
    assert env["MODELYARD_LOG_LEVEL"] == "WARNING"
