"""API tokens: list, create (the secret is in this one answer only), revoke. Admin scope."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, status

from backend.api.dependencies import TokensDep
from backend.api.error_handlers import error_responses
from backend.domain.tokens import ApiToken, TokenScope, parse_lifetime
from backend.errors import InvalidRequestError
from shared.contracts.tokens import (
    TOKEN_NAME_PATTERN,
    CreatedToken,
    CreateTokenRequest,
    ScopeName,
    TokenList,
    TokenView,
)

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

TokenName = Annotated[str, Path(pattern=TOKEN_NAME_PATTERN)]


@router.get("", response_model=TokenList)
def list_tokens(tokens: TokensDep) -> TokenList:
    """Every token, revoked and expired ones too (names stay taken), oldest first."""
    now = tokens.now()
    return TokenList(items=[token_view(t, now) for t in tokens.list_tokens()])


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=CreatedToken, responses=error_responses(409, 422)
)
def create_token(body: CreateTokenRequest, tokens: TokensDep) -> CreatedToken:
    """A new token; its secret is in this answer and nowhere else."""
    try:
        lifetime: timedelta | None = parse_lifetime(body.expires_in) if body.expires_in else None
    except ValueError as exc:
        raise InvalidRequestError(
            f"body.expires_in: {exc}", field="body.expires_in", value=body.expires_in
        ) from exc
    token, secret = tokens.create(body.name, TokenScope(body.scope.value), lifetime)
    return CreatedToken(**token_view(token, token.created_at).model_dump(), token=secret)


@router.delete("/{name}", response_model=TokenView, responses=error_responses(404, 422))
def revoke_token(name: TokenName, tokens: TokensDep) -> TokenView:
    """Revoke at once on this backend (within seconds on others sharing the database)."""
    token = tokens.revoke(name)
    return token_view(token, tokens.now())


def token_view(token: ApiToken, now: datetime) -> TokenView:
    return TokenView(
        name=token.name,
        scopes=[ScopeName(s.value) for s in token.scopes],
        state=token.state(now).value,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )
