"""API tokens: what a bearer token grants (its scopes), how it is made, and how it is stored (a hash).

A token is ``myd_`` followed by 43 URL-safe characters: 32 random bytes (256 bits) from ``secrets``. Only
the sha256 of the whole token is kept. A plain, unsalted sha256 is enough here, unlike for passwords: a
salt and a slow hash exist to stop guessing low-entropy secrets from a stolen table, and nobody guesses
a 256-bit random value whatever the hash costs. It also lets the backend find a token by its hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

TOKEN_PREFIX = "myd_"
TOKEN_BYTES = 32
#: The prefix, then what ``secrets.token_urlsafe(32)`` yields (43 characters, no padding).
TOKEN_PATTERN = re.compile(r"^myd_[A-Za-z0-9_-]{43}$")


class TokenScope(StrEnum):
    """What a token may do. Each scope includes the ones before it."""

    READ = "read"
    TRAIN = "train"
    ADMIN = "admin"


_ORDER = (TokenScope.READ, TokenScope.TRAIN, TokenScope.ADMIN)


def scopes_up_to(scope: TokenScope) -> tuple[TokenScope, ...]:
    """Every scope ``scope`` grants: ``train`` grants read and train."""
    return _ORDER[: _ORDER.index(scope) + 1]


class TokenState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class ApiToken:
    """A stored token: never the secret itself, only its sha256."""

    name: str
    scopes: tuple[TokenScope, ...]
    token_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return TokenState.EXPIRED
        return TokenState.ACTIVE

    def grants(self, scope: TokenScope) -> bool:
        return scope in self.scopes

    @property
    def highest_scope(self) -> TokenScope:
        return max(self.scopes, key=_ORDER.index)


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_well_formed(token: str) -> bool:
    """The prefix and length of a token this backend makes (no database lookup for anything else)."""
    return TOKEN_PATTERN.match(token) is not None


_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
#: Beyond this an expiry date would leave ``datetime``'s range (999999w is ~19,000 years).
MAX_LIFETIME = timedelta(days=100 * 365)


def parse_lifetime(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m`` as a duration; ValueError for anything else."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a lifetime: write a number and m, h, d or w, e.g. 30d")
    lifetime = int(match.group(1)) * _UNITS[match.group(2)]
    if lifetime > MAX_LIFETIME:
        raise ValueError(f"{text!r} is too long a lifetime: at most {MAX_LIFETIME.days}d; omit it for none")
    return lifetime
