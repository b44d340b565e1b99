"""Shared secrets: ``whsec_<base64>`` and plain strings both work; a bad ``whsec_`` stops the start
naming the variable, never echoing the secret; several secrets rotate (signed with all, any accepted)."""

from __future__ import annotations

import base64

import pytest

from backend.errors import SettingsError
from backend.settings import load_settings
from host_service.settings import HostSettings
from shared.contracts.signing import secret_key, sign_request, verify_request

WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_backend_and_host_read_the_same_whsec_secret() -> None:
    backend = load_settings(shared_secret=WHSEC)
    host = HostSettings(shared_secret=WHSEC)
    assert backend.secrets == host.secrets == [WHSEC]
    assert secret_key(backend.secrets[0]) == b"k" * 32


def test_a_bad_whsec_secret_names_the_variable_and_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_SHARED_SECRET", "whsec_no!such!base64")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "MODELYARD_SHARED_SECRET:" in caught.value.message
    assert "no!such!base64" not in caught.value.message
    with pytest.raises(ValueError, match="must be base64"):
        HostSettings()


def test_rotation_signs_with_every_secret_and_accepts_any() -> None:
    backend = load_settings(shared_secrets="new-secret,old-secret")
    host = HostSettings(shared_secret="old-secret")
    headers = sign_request(backend.secrets, "GET", "/health")
    verify_request(host.secrets, headers, "GET", "/health", b"")
