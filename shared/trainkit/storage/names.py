"""How model names map onto the file system, and the guard that keeps every request inside the root.

A version lives in ``{root}/{strategy}/{name}_v{N}/`` and the pointer ``{name}_latest`` names the newest.
Everything the store keeps for itself (temp folders, trash, locks, counters) starts with a dot, which no
valid name can, so it never collides with a model and ``list_*`` skip it by that rule alone.
"""

from __future__ import annotations

import re

from shared.trainkit.errors import ConfigError

# Underscore is allowed on purpose: names such as "EURUSD_1h" are the common case.
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_VERSION_DIR = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]{0,99})_v(?P<version>[1-9][0-9]*)$")

TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
MAX_VERSION = 10**9


def validate_component(value: object, field: str) -> str:
    """Return ``value`` if it is one safe path component; otherwise raise :class:`ConfigError`."""
    if not isinstance(value, str) or not _SAFE_COMPONENT.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{field} must be 1-100 characters of letters, digits, '.', '_', '+' or '-', starting with a "
            f"letter or digit and without '..', got {value!r}",
            field=field,
            value=value,
        )
    return value


def validate_version(value: object, field: str = "version") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise ConfigError(
            f"{field} must be a whole number from 1 to {MAX_VERSION}, got {value!r}", field=field, value=value
        )
    return value


def version_dir_name(name: str, version: int) -> str:
    return f"{name}_v{version}"


def latest_link_name(name: str) -> str:
    return f"{name}_latest"


def lock_file_name(name: str) -> str:
    return f".{name}.lock"


def counter_file_name(name: str) -> str:
    return f".{name}.counter"


def parse_version_dir(dirname: str) -> tuple[str, int] | None:
    """``"EURUSD_1h_v3"`` -> ``("EURUSD_1h", 3)``; ``None`` for anything that is not a version folder."""
    match = _VERSION_DIR.fullmatch(dirname)
    if match is None or ".." in match["name"]:
        return None
    version = int(match["version"])
    return (match["name"], version) if version <= MAX_VERSION else None
