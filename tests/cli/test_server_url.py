"""A malformed --server / MODELYARD_SERVER is a usage error with an example, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from backend.cli import cli
from backend.cli.backend_client import BackendClient, ServerUrlError, server_url
from backend.cli.options import CliEnv
from tests.cli.conftest import Invoke

MALFORMED = ["notaurl", "http//x", "ftp://x", "http://", "http://x:notaport", "http://x?a=1"]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_server_url_exits_2_naming_the_option_and_an_example(invoke: Invoke, url: str) -> None:
    result = invoke(["ops", "list", "--server", url], env=CliEnv())
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--server (or MODELYARD_SERVER)" in result.stderr
    assert "http://127.0.0.1:8000" in result.stderr


def test_a_malformed_url_from_the_environment_is_rejected_too() -> None:
    result = CliRunner().invoke(
        cli,
        ["train", "trend_momentum", "--symbol", "EURUSD", "--timeframe", "1h"],
        obj=CliEnv(),
        env={"MODELYARD_SERVER": "ftp://x"},
    )
    assert result.exit_code == 2
    assert "MODELYARD_SERVER" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://modelyard.example.com", "https://modelyard.example.com"),
        (" http://gpu-box:8000/modelyard ", "http://gpu-box:8000/modelyard"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_http_and_https_urls_are_accepted(given: str, kept: str) -> None:
    assert server_url(given) == kept


def test_the_client_refuses_a_malformed_url_when_built() -> None:
    with pytest.raises(ServerUrlError, match="not a server URL"):
        BackendClient("http//x")
