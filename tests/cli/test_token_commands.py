"""``modelyard tokens …`` on the backend's database, ``--token`` on the wire, and refused tokens' messages."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from backend.cli import cli
from backend.cli.options import CliEnv
from tests.cli.conftest import Invoke
from tests.cli.fake_backend import FakeBackend, operation
from tests.servers import free_port

SERVER = ["--server", "http://backend.test"]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend settings' database, as ``modelyard serve`` would find it."""
    url = f"sqlite:///{tmp_path / 'var' / 'modelyard.db'}"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MODELYARD_DATABASE_URL", url)
    return url


def test_tokens_are_created_once_listed_and_revoked_on_the_database(invoke: Invoke, database: str) -> None:
    created = invoke(["tokens", "create", "ci", "--scope", "train", "--expires", "30d"])
    assert created.exit_code == 0, created.output
    assert re.fullmatch(r"myd_[A-Za-z0-9_-]{43}\n", created.stdout)
    assert "token ci created (scope train, expires" in created.stderr
    assert "shown this once" in created.stderr

    listed = invoke(["tokens", "list"])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"ci\s+│ train\s+│ active", listed.stdout)
    assert created.stdout.strip() not in listed.stdout

    again = invoke(["tokens", "create", "ci", "--scope", "read"])
    assert again.exit_code == 2
    assert "a token named 'ci' exists" in again.stderr

    revoked = invoke(["tokens", "revoke", "ci"])
    assert revoked.exit_code == 0, revoked.output
    assert re.search(r"ci\s+│ train\s+│ revoked", invoke(["tokens", "list"]).stdout)
    missing = invoke(["tokens", "revoke", "nobody"])
    assert missing.exit_code == 2
    assert "no token named 'nobody'" in missing.stderr


def test_token_names_and_lifetimes_are_checked_before_anything_is_written(
    invoke: Invoke, database: str
) -> None:
    bad_name = invoke(["tokens", "create", "Has Spaces", "--scope", "read"])
    assert bad_name.exit_code == 2
    bad_lifetime = invoke(["tokens", "create", "ok", "--scope", "read", "--expires", "soon"])
    assert bad_lifetime.exit_code == 2
    too_long = invoke(["tokens", "create", "ok", "--scope", "read", "--expires", "999999w"])
    assert too_long.exit_code == 2
    assert "too long a lifetime" in too_long.stderr
    assert "no tokens" in invoke(["tokens", "list"]).stdout


def test_the_token_is_sent_as_a_bearer_header_from_the_option_or_the_environment(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[operation("op-1", "running", 40.0)])
    result = invoke(
        ["ops", "show", "op-1", *SERVER, "--token", "myd_from_option"], env=CliEnv(transport=fake.transport())
    )
    assert result.exit_code == 0, result.output
    assert fake.requests[-1].headers["authorization"] == "Bearer myd_from_option"

    fake = FakeBackend(operation_states=[operation("op-1", "running", 40.0)])
    result = CliRunner().invoke(
        cli,
        ["ops", "list", *SERVER],
        obj=CliEnv(transport=fake.transport()),
        env={"MODELYARD_TOKEN": "myd_from_env", "MODELYARD_SERVER": None},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert fake.requests[-1].headers["authorization"] == "Bearer myd_from_env"


def test_no_token_is_sent_when_none_is_given(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[operation("op-1", "running", 40.0)])
    invoke(["ops", "show", "op-1", *SERVER], env=CliEnv(transport=fake.transport()))
    assert "authorization" not in fake.requests[-1].headers


def _refusing(status: int, code: str, message: str, reason: str) -> CliEnv:
    body = {"error": {"code": code, "message": message, "details": {"reason": reason}}}
    return CliEnv(transport=httpx.MockTransport(lambda _: httpx.Response(status, json=body)))


def test_a_missing_token_says_how_to_pass_and_create_one(invoke: Invoke) -> None:
    env = _refusing(401, "unauthenticated", "this API needs a token", "missing")
    result = invoke(["ops", "list", *SERVER], env=env)
    assert result.exit_code == 4
    assert "the server needs a token: pass --token or set MODELYARD_TOKEN" in result.stderr
    assert "modelyard tokens create NAME --scope read|train|admin" in result.stderr


def test_a_token_lacking_a_scope_is_named_with_the_scope(invoke: Invoke) -> None:
    env = _refusing(403, "forbidden", "token 'viewer' lacks scope train (it has read)", "forbidden")
    result = invoke(["ops", "cancel", "op-1", *SERVER, "--token", "myd_x"], env=env)
    assert result.exit_code == 4
    assert "token 'viewer' lacks scope train" in result.stderr


def test_serving_beyond_loopback_without_a_token_is_refused_with_the_command_to_run(
    invoke: Invoke, database: str
) -> None:
    result = invoke(["serve", "--host", "0.0.0.0", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "modelyard tokens create admin --scope admin" in result.stderr


def test_ops_show_and_list_name_the_tokens_that_submitted_and_cancelled(invoke: Invoke) -> None:
    op = operation("op-1", "cancelled", 40.0, submitted_by="ci", cancelled_by="admin")
    shown = invoke(
        ["ops", "show", "op-1", *SERVER], env=CliEnv(transport=FakeBackend(operation_states=[op]).transport())
    )
    assert re.search(r"submitted by\s+│ ci", shown.stdout)
    assert re.search(r"cancelled by\s+│ admin", shown.stdout)
    fake = FakeBackend(operation_states=[op])
    fake.listed = [op]
    listed = invoke(["ops", "list", *SERVER], env=CliEnv(transport=fake.transport()))
    assert "┃ by" in listed.stdout
    assert re.search(r"│ ci\s", listed.stdout)
