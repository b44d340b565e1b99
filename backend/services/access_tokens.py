"""TokenService: create, list and revoke API tokens (CLI and API), and check a presented bearer token.

Checking runs on every request, so it reads an in-memory snapshot of the token table, reloaded at most
every ``refresh_s`` (and on an unknown token, at most every ``miss_refresh_s``: a token just created by
``modelyard tokens create`` on another process works at once). A revoke through this service takes effect
at once; one made elsewhere (the CLI, another backend) within ``refresh_s``. Expiry is checked against the
clock on every request. ``last_used_at`` is written with the next reload, at most every ``touch_every_s``
per token, so a busy token does not mean a database write per request.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from anyio import to_thread

from backend.domain.ports import Clock, TokenRepository
from backend.domain.tokens import (
    ApiToken,
    TokenScope,
    TokenState,
    hash_token,
    is_well_formed,
    new_token_secret,
    scopes_up_to,
)
from backend.errors import AuthenticationError, TokenNotFoundError

logger = logging.getLogger(__name__)


class TokenService:
    def __init__(
        self,
        repo: TokenRepository,
        clock: Clock,
        *,
        new_secret: Callable[[], str] = new_token_secret,
        monotonic: Callable[[], float] = time.monotonic,
        refresh_s: float = 2.0,
        miss_refresh_s: float = 0.5,
        touch_every_s: float = 60.0,
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._new_secret = new_secret
        self._monotonic = monotonic
        self._refresh_s = refresh_s
        self._miss_refresh_s = miss_refresh_s
        self._touch_every = timedelta(seconds=touch_every_s)
        self._by_hash: dict[str, ApiToken] = {}
        self._loaded_at: float | None = None
        self._unwritten_use: dict[str, datetime] = {}
        self._reload_lock = asyncio.Lock()

    # --- management (CLI and admin API) -----------------------------------------------------------

    def create(self, name: str, scope: TokenScope, lifetime: timedelta | None = None) -> tuple[ApiToken, str]:
        """The stored token and the secret itself, which exists nowhere else once returned."""
        secret = self._new_secret()
        now = self._clock.now()
        token = ApiToken(
            name=name,
            scopes=scopes_up_to(scope),
            token_hash=hash_token(secret),
            created_at=now,
            expires_at=now + lifetime if lifetime else None,
        )
        self._repo.add(token)
        self._by_hash[token.token_hash] = token
        logger.info("API token %s created (scope %s)", name, scope.value)
        return token, secret

    def now(self) -> datetime:
        return self._clock.now()

    def list_tokens(self) -> list[ApiToken]:
        return self._repo.all()

    def revoke(self, name: str) -> ApiToken:
        token = self._repo.revoke(name, self._clock.now())
        if token is None:
            raise TokenNotFoundError(
                f"no token named {name!r}; `modelyard tokens list` shows them", name=name
            )
        self._by_hash[token.token_hash] = token
        logger.info("API token %s revoked", name)
        return token

    def any_usable(self) -> bool:
        """Whether a token exists that is neither revoked nor expired (read from the database)."""
        now = self._clock.now()
        return any(t.state(now) is TokenState.ACTIVE for t in self._repo.all())

    # --- checking (every request) ------------------------------------------------------------------

    def any_unrevoked(self) -> bool:
        """Whether a token exists that was not revoked (an expired one counts: tokens were set up, and
        the API must not open again on its own when the last one expires)."""
        return any(t.revoked_at is None for t in self._repo.all())

    async def tokens_exist(self) -> bool:
        """:meth:`any_unrevoked`, from the snapshot."""
        await self._reload_if_older_than(self._refresh_s)
        return any(t.revoked_at is None for t in self._by_hash.values())

    async def authenticate(self, presented: str) -> ApiToken:
        """The token whose secret is ``presented``; AuthenticationError with a reason otherwise."""
        if not is_well_formed(presented):
            raise AuthenticationError(
                "the bearer token is malformed: modelyard tokens start with myd_", reason="malformed"
            )
        digest = hash_token(presented)
        await self._reload_if_older_than(self._refresh_s)
        token = self._by_hash.get(digest)
        if token is None:
            await self._reload_if_older_than(self._miss_refresh_s)
            token = self._by_hash.get(digest)
        # The dictionary found it by hash; the comparison that decides is constant-time all the same.
        if token is None or not hmac.compare_digest(token.token_hash, digest):
            raise AuthenticationError("the bearer token is not known to this backend", reason="unknown")
        now = self._clock.now()
        state = token.state(now)
        if state is not TokenState.ACTIVE:
            raise AuthenticationError(
                f"the token {token.name!r} is {state.value}", reason=state.value, token=token.name
            )
        if token.last_used_at is None or now - token.last_used_at >= self._touch_every:
            self._by_hash[digest] = replace(token, last_used_at=now)
            self._unwritten_use[token.name] = now
        return token

    async def _reload_if_older_than(self, seconds: float) -> None:
        if self._loaded_at is not None and self._monotonic() - self._loaded_at < seconds:
            return
        async with self._reload_lock:
            if self._loaded_at is not None and self._monotonic() - self._loaded_at < seconds:
                return
            used, self._unwritten_use = self._unwritten_use, {}
            tokens = await to_thread.run_sync(self._write_use_and_read, used)
            self._by_hash = {t.token_hash: t for t in tokens}
            self._loaded_at = self._monotonic()

    def _write_use_and_read(self, used: dict[str, datetime]) -> list[ApiToken]:
        if used:
            try:
                self._repo.record_use(used)
            except Exception:  # last-used times are informative: a failed write must not refuse requests
                logger.warning("could not record the last use of %d token(s)", len(used), exc_info=True)
        return self._repo.all()
