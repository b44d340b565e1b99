"""API tokens on the wire: ``/api/v1/tokens`` (admin scope) and the CLI's ``modelyard tokens``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.errors import describe_pattern

TOKEN_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
TOKEN_NAME_RULE = "1-64 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit"
LIFETIME_PATTERN = r"^[1-9][0-9]{0,5}[mhdw]$"
LIFETIME_RULE = "a number and m, h, d or w, e.g. 30d"
describe_pattern(TOKEN_NAME_PATTERN, TOKEN_NAME_RULE)
describe_pattern(LIFETIME_PATTERN, LIFETIME_RULE)


class ScopeName(StrEnum):
    READ = "read"
    TRAIN = "train"
    ADMIN = "admin"


class CreateTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "ci", "scope": "train", "expires_in": "30d"}]},
    )

    name: str = Field(
        ..., pattern=TOKEN_NAME_PATTERN, description="Unique; shown as submitted_by / cancelled_by."
    )
    scope: ScopeName = Field(
        ..., description="read (every GET), train (+ submit, cancel, upload data), admin (+ all)."
    )
    expires_in: str | None = Field(
        None, pattern=LIFETIME_PATTERN, description="Lifetime, e.g. 30d, 12h, 2w; none: until revoked."
    )


class TokenView(BaseModel):
    """A token as stored: never its secret."""

    name: str
    scopes: list[ScopeName] = Field(..., description="Every scope it grants (train grants read too).")
    state: str = Field(..., description="active, expired or revoked.")
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = Field(None, description="Recorded to within about a minute.")


class CreatedToken(TokenView):
    token: str = Field(..., description="The secret, shown this once: only its sha256 is stored.")


class TokenList(BaseModel):
    items: list[TokenView]
