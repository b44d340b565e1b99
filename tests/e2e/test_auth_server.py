"""A real ``modelyard serve`` with API tokens: refused start beyond loopback, then tokens on the wire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import backend_env, free_port, wait_healthy

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-c", "from backend.cli import main; main()"]
START_DEADLINE_S = 60.0


def modelyard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "data").mkdir()
    return backend_env(
        free_port(),
        tmp_path,
        tmp_path / "data",
        MODELYARD_GENERATE_SAMPLE_DATA="false",
        MODELYARD_LOG_LEVEL="WARNING",
    )


def test_serving_the_network_is_refused_until_a_token_exists(env: dict[str, str]) -> None:
    refused = modelyard(env, "serve", "--host", "0.0.0.0")
    assert refused.returncode == 2
    assert "modelyard tokens create admin --scope admin" in refused.stderr


def test_a_token_made_on_the_database_opens_the_api_to_its_holder_only(
    env: dict[str, str], tmp_path: Path
) -> None:
    created = modelyard(env, "tokens", "create", "laptop", "--scope", "train")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    url_env = {**env, "MODELYARD_SERVER": f"http://127.0.0.1:{env['MODELYARD_PORT']}"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*CLI, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = url_env["MODELYARD_SERVER"]
    try:
        wait_healthy(url, server, START_DEADLINE_S, every=0.2, log=log)
        without = modelyard(url_env, "ops", "list")
        assert without.returncode == 4
        assert "pass --token or set MODELYARD_TOKEN" in without.stderr
        with_token = modelyard({**url_env, "MODELYARD_TOKEN": token}, "ops", "list")
        assert with_token.returncode == 0, with_token.stderr
        denied = httpx.put(
            f"{url}/api/v1/system/execution-mode",
            json={"mode": "local"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert denied.status_code == 403
        assert denied.json()["error"]["message"] == "token 'laptop' lacks scope admin (it has train)"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
