"""Model aliases: a stable name (``production``, ``sweep-3-best``) for one version of a model.

An alias starts with a letter, so ``…/versions/{ref}`` is a version number when ``ref`` is all digits and
an alias otherwise: the two can never be mistaken for each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from backend.errors import InvalidRequestError

ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
ALIAS_RULE = "1-64 letters, digits, '_', '-' or '.', starting with a letter (e.g. production, staging)"
_ALIAS = re.compile(ALIAS_PATTERN)


class AliasAction(StrEnum):
    SET = "set"
    MOVED = "moved"
    REMOVED = "removed"


@dataclass(frozen=True)
class ModelAlias:
    strategy: str
    name: str
    alias: str
    version: int
    set_by: str | None
    set_at: datetime


@dataclass(frozen=True)
class AliasChange:
    """One line of an alias's history: who pointed it where, from which version, when."""

    strategy: str
    name: str
    alias: str
    action: AliasAction
    from_version: int | None
    to_version: int | None
    by: str | None
    at: datetime


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise InvalidRequestError(
            f"alias {alias[:80]!r} is not valid: use {ALIAS_RULE}; no '/' and not a number",
            field="alias",
            value=alias[:80],
        )
    return alias


def version_ref(ref: str) -> int | None:
    """The version number ``ref`` names, or None when it is an alias."""
    return int(ref) if ref.isdigit() else None
