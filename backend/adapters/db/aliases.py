"""SqlAliasRepository: model aliases and their history in SQLite or PostgreSQL.

A move is one transaction that writes before it reads: a no-op ``UPDATE`` of the alias row takes the
write lock first (SQLite's database lock; PostgreSQL's row lock, with ``FOR UPDATE`` on the read), so the
version read is the one the move replaces, two concurrent moves are serialised, and each records the
version the other left. Two first sets of one alias race on the primary key: the loser retries.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from backend.adapters.db.tables import ModelAliasHistoryRow, ModelAliasRow
from backend.domain.aliases import AliasAction, AliasChange, ModelAlias

_ATTEMPTS = 50


def _alias(row: ModelAliasRow) -> ModelAlias:
    return ModelAlias(row.strategy, row.name, row.alias, row.version, row.set_by, row.set_at)


def _change(row: ModelAliasHistoryRow) -> AliasChange:
    return AliasChange(
        row.strategy,
        row.name,
        row.alias,
        AliasAction(row.action),
        row.from_version,
        row.to_version,
        row.by,
        row.at,
    )


class SqlAliasRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def set(
        self, strategy: str, name: str, alias: str, version: int, *, by: str | None, at: datetime
    ) -> AliasChange:
        """Point ``alias`` at ``version`` (creating it or moving it) and record the change."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._sessions.begin() as session:
                    return self._set(session, strategy, name, alias, version, by, at)
            except (IntegrityError, OperationalError):  # a concurrent first set, or SQLite busy
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _set(
        self,
        session: Session,
        strategy: str,
        name: str,
        alias: str,
        version: int,
        by: str | None,
        at: datetime,
    ) -> AliasChange:
        where = (ModelAliasRow.strategy == strategy, ModelAliasRow.name == name, ModelAliasRow.alias == alias)
        session.execute(update(ModelAliasRow).where(*where).values(alias=ModelAliasRow.alias))  # the lock
        row = session.scalars(select(ModelAliasRow).where(*where).with_for_update()).first()
        previous = row.version if row is not None else None
        if row is None:
            session.add(
                ModelAliasRow(
                    strategy=strategy, name=name, alias=alias, version=version, set_by=by, set_at=at
                )
            )
            session.flush()
        else:
            row.version, row.set_by, row.set_at = version, by, at
        action = AliasAction.SET if previous is None else AliasAction.MOVED
        return self._record(session, strategy, name, alias, action, previous, version, by, at)

    def remove(
        self, strategy: str, name: str, alias: str, *, by: str | None, at: datetime
    ) -> AliasChange | None:
        """Drop ``alias`` and record it; None when there was no such alias."""
        with self._sessions.begin() as session:
            where = (
                ModelAliasRow.strategy == strategy,
                ModelAliasRow.name == name,
                ModelAliasRow.alias == alias,
            )
            session.execute(update(ModelAliasRow).where(*where).values(alias=ModelAliasRow.alias))
            row = session.scalars(select(ModelAliasRow).where(*where).with_for_update()).first()
            if row is None:
                return None
            previous = row.version
            session.delete(row)
            return self._record(session, strategy, name, alias, AliasAction.REMOVED, previous, None, by, at)

    def remove_version(
        self, strategy: str, name: str, version: int, *, by: str | None, at: datetime
    ) -> list[str]:
        """Drop every alias of a deleted version (recorded); their names."""
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(ModelAliasRow).where(
                    ModelAliasRow.strategy == strategy,
                    ModelAliasRow.name == name,
                    ModelAliasRow.version == version,
                )
            ).all()
            for row in rows:
                self._record(session, strategy, name, row.alias, AliasAction.REMOVED, version, None, by, at)
            session.execute(
                delete(ModelAliasRow).where(
                    ModelAliasRow.strategy == strategy,
                    ModelAliasRow.name == name,
                    ModelAliasRow.version == version,
                )
            )
            return [row.alias for row in rows]

    def get(self, strategy: str, name: str, alias: str) -> ModelAlias | None:
        with self._sessions() as session:
            row = session.get(ModelAliasRow, (strategy, name, alias))
            return None if row is None else _alias(row)

    def of_model(self, strategy: str, name: str) -> list[ModelAlias]:
        with self._sessions() as session:
            rows = session.scalars(
                select(ModelAliasRow)
                .where(ModelAliasRow.strategy == strategy, ModelAliasRow.name == name)
                .order_by(ModelAliasRow.alias)
            )
            return [_alias(r) for r in rows]

    def all(self) -> list[ModelAlias]:
        with self._sessions() as session:
            rows = session.scalars(
                select(ModelAliasRow).order_by(
                    ModelAliasRow.strategy, ModelAliasRow.name, ModelAliasRow.alias
                )
            )
            return [_alias(r) for r in rows]

    def history(self, strategy: str, name: str, *, limit: int = 200) -> list[AliasChange]:
        """The newest changes first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ModelAliasHistoryRow)
                .where(ModelAliasHistoryRow.strategy == strategy, ModelAliasHistoryRow.name == name)
                .order_by(ModelAliasHistoryRow.id.desc())
                .limit(limit)
            )
            return [_change(r) for r in rows]

    @staticmethod
    def _record(
        session: Session,
        strategy: str,
        name: str,
        alias: str,
        action: AliasAction,
        from_version: int | None,
        to_version: int | None,
        by: str | None,
        at: datetime,
    ) -> AliasChange:
        change = AliasChange(strategy, name, alias, action, from_version, to_version, by, at)
        session.add(
            ModelAliasHistoryRow(
                strategy=strategy,
                name=name,
                alias=alias,
                action=action.value,
                from_version=from_version,
                to_version=to_version,
                by=by,
                at=at,
            )
        )
        return change
