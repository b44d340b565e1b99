"""``modelyard ray-job``: its options parse, and it refuses to run without its job token."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from backend.cli.app import cli
from shared.contracts.ray_jobs import JOB_TOKEN_ENV


def test_ray_job_help_names_every_option() -> None:
    result = CliRunner().invoke(cli, ["ray-job", "--help"])
    assert result.exit_code == 0, result.output
    for option in (
        "--backend-url",
        "--operation-id",
        "--commands-dir",
        "--inline-limit",
        "--timeout",
        "--retry",
    ):
        assert option in result.output


def test_ray_job_without_its_token_is_a_usage_error_naming_the_variable() -> None:
    result = CliRunner(env={JOB_TOKEN_ENV: ""}).invoke(
        cli, ["ray-job", "--backend-url", "http://127.0.0.1:9", "--operation-id", "op_x"]
    )
    assert result.exit_code == 2
    assert JOB_TOKEN_ENV in result.output


def test_ray_job_reports_a_backend_it_cannot_reach_and_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    result = CliRunner(env={JOB_TOKEN_ENV: "mjt_op_x.1.00"}).invoke(
        cli,
        [
            "ray-job",
            "--backend-url",
            "http://127.0.0.1:9",
            "--operation-id",
            "op_x",
            "--retry",
            "0",
            "--timeout",
            "1",
        ],
    )
    assert result.exit_code == 1
    assert "backend_unreachable: GET http://127.0.0.1:9/api/v1/ray/jobs/op_x/spec" in caplog.text
