"""Wire schemas of model aliases (pydantic only)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SetAliasRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 3}]})

    version: int = Field(..., ge=1, le=10**9, description="The version the alias points at from now on.")


class AliasView(BaseModel):
    strategy: str
    name: str
    alias: str
    version: int
    set_by: str | None = Field(None, description="The API token that set it; null without tokens.")
    set_at: datetime


class AliasChangeView(BaseModel):
    """One set, move or removal of an alias."""

    alias: str
    action: Literal["set", "moved", "removed"]
    from_version: int | None = Field(None, description="Where it pointed before (null: it was new).")
    to_version: int | None = Field(None, description="Where it points now (null: removed).")
    by: str | None = Field(None, description="The API token that changed it; null without tokens.")
    at: datetime


class AliasList(BaseModel):
    strategy: str
    name: str
    aliases: list[AliasView]
    history: list[AliasChangeView] = Field(default_factory=list, description="Newest first.")
