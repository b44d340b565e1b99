"""``python -m host_service``: settings from flags and environment; no open port without a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_service.__main__ import EXIT_USAGE, load_settings, main, parse_args, refusal
from host_service.settings import HostSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELYARD_SHARED_SECRET", "MODELYARD_SHARED_SECRETS", "MODELYARD_HOST_BIND"):
        monkeypatch.delenv(name, raising=False)


def test_non_loopback_bind_without_a_secret_exits_2_saying_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bind", "0.0.0.0", "--work-dir", "/nonexistent"]) == EXIT_USAGE
    message = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in message
    assert "MODELYARD_SHARED_SECRET" in message


def test_non_loopback_bind_with_a_secret_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_SHARED_SECRET", "s")
    assert refusal(load_settings(parse_args(["--bind", "0.0.0.0"]))) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_secret(address: str) -> None:
    assert refusal(HostSettings(bind=address)) is None


def test_flags_override_defaults(tmp_path: Path) -> None:
    settings = load_settings(parse_args(["--port", "6000", "--work-dir", str(tmp_path), "--capacity", "2"]))
    assert (settings.port, settings.work_dir, settings.capacity, settings.bind) == (
        6000,
        tmp_path,
        2,
        "127.0.0.1",
    )


def test_secrets_for_rotation_come_from_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_SHARED_SECRETS", "new, old")
    monkeypatch.setenv("MODELYARD_SHARED_SECRET", "old")
    assert HostSettings().secrets == ["new", "old"]


def test_host_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_HOST_CAPACITY", "4")
    monkeypatch.setenv("MODELYARD_HOST_STOP_GRACE_S", "2.5")
    settings = HostSettings()
    assert (settings.capacity, settings.stop_grace_s) == (4, 2.5)


def test_the_commands_folder_is_in_the_work_dir_unless_a_flag_or_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MODELYARD_HOST_COMMANDS_DIR", raising=False)
    assert load_settings(parse_args(["--work-dir", str(tmp_path)])).commands_folder == tmp_path / "commands"
    flagged = load_settings(parse_args(["--commands-dir", str(tmp_path / "mine")]))
    assert flagged.commands_folder == tmp_path / "mine"
    monkeypatch.setenv("MODELYARD_HOST_COMMANDS_DIR", str(tmp_path / "env"))
    assert HostSettings().commands_folder == tmp_path / "env"
