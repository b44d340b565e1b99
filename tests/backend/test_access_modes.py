"""When tokens are required and when a backend may start: the decisions, and the start paths using them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.components import standalone_tokens
from backend.domain.access import AuthMode, is_loopback, start_refusal, tokens_required
from backend.domain.tokens import TokenScope, hash_token, is_well_formed, new_token_secret, parse_lifetime
from backend.errors import AuthSetupError
from backend.server import check_auth_setup
from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app

LOOPBACK = "127.0.0.1"
LAN = "0.0.0.0"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"])
def test_loopback_addresses_are_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "my-box.local"])
def test_anything_else_is_beyond_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("mode", "host", "tokens_exist", "insecure", "required"),
    [
        (AuthMode.AUTO, LOOPBACK, False, False, False),
        (AuthMode.AUTO, LOOPBACK, True, False, True),
        (AuthMode.AUTO, LAN, False, False, True),
        (AuthMode.AUTO, LAN, True, False, True),
        (AuthMode.REQUIRED, LOOPBACK, True, False, True),
        (AuthMode.OFF, LOOPBACK, True, False, False),
        (AuthMode.AUTO, LAN, True, True, False),
    ],
)
def test_when_tokens_are_required(
    mode: AuthMode, host: str, tokens_exist: bool, insecure: bool, required: bool
) -> None:
    assert tokens_required(mode, listen_host=host, tokens_exist=tokens_exist, insecure=insecure) is required


@pytest.mark.parametrize(
    ("mode", "host", "tokens_exist", "insecure", "refused_with"),
    [
        (AuthMode.AUTO, LOOPBACK, False, False, None),
        (AuthMode.AUTO, LAN, False, False, "modelyard tokens create admin --scope admin"),
        (AuthMode.AUTO, LAN, True, False, None),
        (AuthMode.AUTO, LAN, False, True, None),
        (AuthMode.REQUIRED, LOOPBACK, False, False, "modelyard tokens create admin --scope admin"),
        (AuthMode.REQUIRED, LOOPBACK, True, False, None),
        (AuthMode.REQUIRED, LAN, True, True, "contradict"),
        (AuthMode.OFF, LOOPBACK, False, False, None),
        (AuthMode.OFF, LAN, True, False, "only allowed on loopback"),
    ],
)
def test_when_a_backend_refuses_to_start(
    mode: AuthMode, host: str, tokens_exist: bool, insecure: bool, refused_with: str | None
) -> None:
    refusal = start_refusal(mode, listen_host=host, tokens_exist=tokens_exist, insecure=insecure)
    if refused_with is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refused_with in refusal


def test_tokens_carry_256_random_bits_behind_a_recognisable_prefix() -> None:
    made = {new_token_secret() for _ in range(50)}
    assert len(made) == 50
    assert all(t.startswith("myd_") and is_well_formed(t) for t in made)
    assert not is_well_formed("myd_short")
    assert not is_well_formed("abc_" + next(iter(made))[4:])
    assert hash_token("myd_x") == hash_token("myd_x") != hash_token("myd_y")


def test_lifetimes_read_as_durations() -> None:
    assert parse_lifetime("30d") == timedelta(days=30)
    assert parse_lifetime("12h") == timedelta(hours=12)
    assert parse_lifetime("2w") == timedelta(weeks=2)
    for bad in ("0d", "30", "d", "1y", "-1d"):
        with pytest.raises(ValueError, match="lifetime"):
            parse_lifetime(bad)


def test_a_lifetime_beyond_a_century_is_refused_rather_than_overflowing_the_expiry_date() -> None:
    assert parse_lifetime("5214w") <= timedelta(days=100 * 365)
    for too_long in ("999999w", "999999d", "5215w"):
        with pytest.raises(ValueError, match="too long a lifetime"):
            parse_lifetime(too_long)


def test_the_serve_check_refuses_beyond_loopback_until_a_token_exists(settings: Settings) -> None:
    settings.host = LAN
    with pytest.raises(AuthSetupError, match="modelyard tokens create admin --scope admin"):
        check_auth_setup(settings)
    tokens, db = standalone_tokens(settings)
    tokens.create("admin", TokenScope.ADMIN)
    db.dispose()
    check_auth_setup(settings)


def test_an_expired_token_does_not_count_as_one(settings: Settings) -> None:
    settings.host = LAN
    tokens, db = standalone_tokens(settings)
    tokens.create("old", TokenScope.ADMIN, timedelta(minutes=-1))
    tokens.create("gone", TokenScope.ADMIN)
    tokens.revoke("gone")
    db.dispose()
    with pytest.raises(AuthSetupError):
        check_auth_setup(settings)


def test_insecure_no_auth_passes_the_serve_check_beyond_loopback(settings: Settings) -> None:
    settings.host = LAN
    settings.insecure_no_auth = True
    check_auth_setup(settings)


@pytest.mark.anyio
async def test_the_app_refuses_to_start_beyond_loopback_without_a_token(
    settings: Settings, fakes: Fakes
) -> None:
    settings.host = LAN
    with pytest.raises(AuthSetupError):
        await start_app(settings, fakes)


@pytest.mark.anyio
async def test_the_app_warns_at_every_insecure_start(
    settings: Settings, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    settings.host = LAN
    settings.insecure_no_auth = True
    _, lifespan = await start_app(settings, fakes)
    await lifespan.__aexit__(None, None, None)
    assert any(r.levelname == "WARNING" and "--insecure-no-auth" in r.getMessage() for r in caplog.records)
