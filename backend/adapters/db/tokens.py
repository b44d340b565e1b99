"""SqlTokenRepository: API tokens (their hashes) in SQLite or PostgreSQL, mapped row <-> domain."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import ApiTokenRow
from backend.domain.tokens import ApiToken, TokenScope
from backend.errors import TokenExistsError


def _to_domain(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        name=row.name,
        scopes=tuple(TokenScope(s) for s in row.scopes),
        token_hash=row.token_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class SqlTokenRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, token: ApiToken) -> None:
        row = ApiTokenRow(
            name=token.name,
            token_hash=token.token_hash,
            scopes=[s.value for s in token.scopes],
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as exc:
            raise TokenExistsError(
                f"a token named {token.name!r} exists (revoked tokens keep their name); pick another name",
                name=token.name,
            ) from exc

    def get(self, name: str) -> ApiToken | None:
        with self._sessions() as session:
            row = session.get(ApiTokenRow, name)
            return None if row is None else _to_domain(row)

    def all(self) -> list[ApiToken]:
        with self._sessions() as session:
            rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.name))
            return [_to_domain(r) for r in rows]

    def revoke(self, name: str, at: datetime) -> ApiToken | None:
        with self._sessions.begin() as session:
            session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = session.get(ApiTokenRow, name)
            return None if row is None else _to_domain(row)

    def record_use(self, used: Mapping[str, datetime]) -> None:
        with self._sessions.begin() as session:
            for name, at in used.items():
                session.execute(
                    update(ApiTokenRow)
                    .where(
                        ApiTokenRow.name == name,
                        or_(ApiTokenRow.last_used_at.is_(None), ApiTokenRow.last_used_at < at),
                    )
                    .values(last_used_at=at)
                )
