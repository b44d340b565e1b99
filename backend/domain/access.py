"""When the API demands a token (the auth mode), and whether a backend may start as configured.

| MODELYARD_AUTH | tokens are required when |
|---|---|
| auto (default) | the backend listens beyond loopback, or any token exists that was not revoked |
| required | always |
| off | never; allowed only on loopback |

``--insecure-no-auth`` (MODELYARD_INSECURE_NO_AUTH) switches tokens off wherever the backend listens, for
trusted networks, and is warned about at every start.
"""

from __future__ import annotations

import functools
import ipaddress
from enum import StrEnum

CREATE_ADMIN_TOKEN = "modelyard tokens create admin --scope admin"


class AuthMode(StrEnum):
    AUTO = "auto"
    REQUIRED = "required"
    OFF = "off"


@functools.lru_cache(maxsize=1024)  # asked for every request's peer: parsing the address each time shows
def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: only this machine reaches it. ``0.0.0.0`` and any name
    but ``localhost`` count as beyond loopback."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tokens_required(mode: AuthMode, *, listen_host: str, tokens_exist: bool, insecure: bool) -> bool:
    """Whether a request needs a bearer token right now."""
    if insecure or mode is AuthMode.OFF:
        return False
    if mode is AuthMode.REQUIRED:
        return True
    return tokens_exist or not is_loopback(listen_host)


def start_refusal(mode: AuthMode, *, listen_host: str, tokens_exist: bool, insecure: bool) -> str | None:
    """Why a backend must not start this way (None: it may): it would serve its whole API to the
    network with no token to check, or with tokens required and none able to pass. ``tokens_exist``:
    a usable one (neither revoked nor expired)."""
    if insecure:
        if mode is AuthMode.REQUIRED:
            return "MODELYARD_AUTH=required and --insecure-no-auth contradict each other; drop one"
        return None
    where = f"listening on {listen_host}"
    if mode is AuthMode.OFF and not is_loopback(listen_host):
        return (
            f"MODELYARD_AUTH=off is only allowed on loopback, and this backend would be {where}; "
            "use MODELYARD_AUTH=auto with a token, or --insecure-no-auth on a trusted network"
        )
    if tokens_exist or mode is AuthMode.OFF:
        return None
    if mode is AuthMode.REQUIRED or not is_loopback(listen_host):
        reason = "MODELYARD_AUTH=required" if mode is AuthMode.REQUIRED else where
        return (
            f"no API token exists, and with {reason} every request needs one. Create one first: "
            f"{CREATE_ADMIN_TOKEN} (or pass --insecure-no-auth on a trusted network)"
        )
    return None
