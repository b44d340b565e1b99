"""``modelyard host`` replaces itself with ``python -m host_service`` (the backend never imports it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend.cli import cli
from backend.cli.host_command import host_argv


def test_host_passes_only_the_options_given_to_python_m_host_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    execs: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("os.execv", lambda path, argv: execs.append((path, list(argv))))
    result = CliRunner().invoke(
        cli, ["host", "--port", "5099", "--work-dir", str(tmp_path), "--capacity", "2"]
    )
    assert result.exit_code == 0, result.output
    assert execs == [
        (
            sys.executable,
            [
                sys.executable,
                "-m",
                "host_service",
                "--port",
                "5099",
                "--work-dir",
                str(tmp_path),
                "--capacity",
                "2",
            ],
        )
    ]


def test_host_passes_its_commands_folder_on(tmp_path: Path) -> None:
    argv = host_argv(None, None, None, None, tmp_path / "commands")
    assert argv == [sys.executable, "-m", "host_service", "--commands-dir", str(tmp_path / "commands")]


def test_host_argv_without_options_leaves_everything_to_the_environment() -> None:
    assert host_argv(None, None, None, None) == [sys.executable, "-m", "host_service"]


def test_the_host_refuses_an_open_port_without_a_shared_secret(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from backend.cli import main; sys.argv[0] = 'modelyard'; main()",
            "host",
            "--bind",
            "0.0.0.0",
            "--work-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "MODELYARD_SHARED_SECRET" in done.stderr
