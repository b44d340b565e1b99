"""SqlResultClaimRepository: the operation_results table (one claim per operation on storing its model).

The claim is an INSERT on the operation id, the primary key: of N backends inserting at once exactly one
succeeds, on SQLite and PostgreSQL alike. An unfinished claim (no version recorded) whose backend is dead
(no lease row renewed within ``lease_s``) is taken over with a compare-and-set on its holder.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import InstanceRow, OperationResultRow
from backend.domain.results import ResultClaim, StoredVersion


class SqlResultClaimRepository:
    def __init__(self, engine: Engine, *, lease_s: float) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._lease_s = lease_s

    def claim(self, op_id: str, owner: str, at: datetime) -> ResultClaim:
        try:
            with self._sessions.begin() as session:
                session.add(OperationResultRow(operation_id=op_id, owner_id=owner, claimed_at=at))
            return ResultClaim(won=True, fresh=True)
        except IntegrityError:
            pass
        with self._sessions.begin() as session:
            row = session.get(OperationResultRow, op_id)
            if row is None:  # released between the insert and this read: try again
                return self.claim(op_id, owner, at)
            if row.version is not None and row.strategy is not None and row.name is not None:
                return ResultClaim(
                    won=False, holder=row.owner_id, stored=StoredVersion(row.strategy, row.name, row.version)
                )
            if row.owner_id == owner:  # this backend's own unfinished claim (an ingest that failed)
                return ResultClaim(won=True)
            holder = row.owner_id
        if self._take_over(op_id, holder, owner, at):
            return ResultClaim(won=True)
        return ResultClaim(won=False, holder=holder)

    def _take_over(self, op_id: str, holder: str, owner: str, at: datetime) -> bool:
        """Move an unfinished claim whose holder has no live lease to ``owner``."""
        cutoff = at - timedelta(seconds=self._lease_s)
        holder_alive = exists().where(InstanceRow.id == holder, InstanceRow.heartbeat_at >= cutoff)
        with self._sessions.begin() as session:
            result = session.execute(
                update(OperationResultRow)
                .where(
                    OperationResultRow.operation_id == op_id,
                    OperationResultRow.owner_id == holder,
                    OperationResultRow.version.is_(None),
                    ~holder_alive,
                )
                .values(owner_id=owner, claimed_at=at)
            )
            return int(getattr(result, "rowcount", 0)) == 1

    def claimed(self, op_id: str) -> bool:
        with self._sessions() as session:
            return session.get(OperationResultRow, op_id) is not None

    def record(self, op_id: str, owner: str, version: StoredVersion) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(OperationResultRow)
                .where(OperationResultRow.operation_id == op_id, OperationResultRow.owner_id == owner)
                .values(strategy=version.strategy, name=version.name, version=version.version)
            )

    def release(self, op_id: str, owner: str) -> None:
        with self._sessions.begin() as session:
            session.execute(
                delete(OperationResultRow).where(
                    OperationResultRow.operation_id == op_id,
                    OperationResultRow.owner_id == owner,
                    OperationResultRow.version.is_(None),
                )
            )

    def stored(self, op_id: str) -> StoredVersion | None:
        """The version recorded for ``op_id``, if any (for tests and the operator's eye)."""
        with self._sessions() as session:
            row = session.scalar(select(OperationResultRow).where(OperationResultRow.operation_id == op_id))
            if row is None or row.version is None or row.strategy is None or row.name is None:
                return None
            return StoredVersion(row.strategy, row.name, row.version)
