"""SqlOperationRepository: operations in SQLite or PostgreSQL, mapped explicitly row <-> domain."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, case, exists, func, null, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import OperationRow, OperationTagRow
from backend.domain.attempts import Attempt
from backend.domain.operations import (
    UNFINISHED_STATUSES,
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    OperationSummary,
    Progress,
    ProjectSummary,
)

#: Set when an operation is created and never changed after: ``save`` leaves them alone (the tags
#: are stored twice, and only ``add`` writes both copies).
_SET_AT_CREATION = (
    "id",
    "created_at",
    "idempotency_key",
    "request_hash",
    "project",
    "name",
    "tags",
    "workload",
    "submitted_by",
)

#: Ids bound in one ``summaries`` statement: a sweep's trials can outnumber the bound parameters a
#: statement may have (32766 on SQLite, 65535 on PostgreSQL).
SUMMARIES_PER_STATEMENT = 1000

#: Changed only by ``claim`` and ``adopt``: a stale snapshot written by ``save`` never moves an
#: operation back to a backend that lost it (``save`` also refuses a snapshot of another owner).
_OWNERSHIP = ("owner_id",)


def _to_row(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id,
        "type": op.type,
        "status": op.status.value,
        "execution_mode": op.execution_mode,
        "mode_reason": op.mode_reason,
        "device": op.device[:32] if op.device else None,
        "progress_percentage": op.progress.percentage,
        "progress": op.progress.as_dict(),
        "request": op.request,
        "result": op.result,
        "error_code": op.error.code if op.error else None,
        "error_message": op.error.message if op.error else None,
        "error_details": op.error.details if op.error else None,
        "warnings": list(op.warnings),
        "history": list(op.history),
        "decisions": list(op.decisions),
        "idempotency_key": op.idempotency_key,
        "created_at": op.created_at,
        "updated_at": op.updated_at,
        "started_at": op.started_at,
        "completed_at": op.completed_at,
        "host_url": op.host_url,
        "host_session_id": op.host_session_id,
        "heartbeat_at": op.heartbeat_at,
        "attempts": op.attempts,
        "require_gpu": op.require_gpu,
        "max_retries": op.max_retries,
        "owner_id": op.owner_id,
        "request_hash": op.request_hash,
        "project": op.project,
        "name": op.name,
        "tags": list(op.tags),
        "workload": op.workload,
        "submitted_by": op.submitted_by,
        "cancelled_by": op.cancelled_by,
        "attempt_log": [attempt.as_dict() for attempt in op.attempt_log],
    }


def _to_domain(row: OperationRow) -> Operation:
    error = None
    if row.error_code is not None:
        error = OperationError(row.error_code, row.error_message or "", dict(row.error_details or {}))
    return Operation(
        id=row.id,
        type=row.type,
        status=OperationStatus(row.status),
        execution_mode=row.execution_mode,
        mode_reason=row.mode_reason,
        request=dict(row.request),
        created_at=row.created_at,
        updated_at=row.updated_at,
        progress=Progress(**row.progress),
        device=row.device,
        result=row.result,
        error=error,
        warnings=tuple(row.warnings),
        idempotency_key=row.idempotency_key,
        started_at=row.started_at,
        completed_at=row.completed_at,
        history=tuple(row.history),
        decisions=tuple(row.decisions),
        host_url=row.host_url,
        host_session_id=row.host_session_id,
        heartbeat_at=row.heartbeat_at,
        attempts=row.attempts or 0,
        require_gpu=bool(row.require_gpu),
        max_retries=row.max_retries,
        owner_id=row.owner_id,
        request_hash=row.request_hash,
        project=row.project,
        name=row.name,
        tags=tuple(row.tags or ()),
        workload=row.workload,
        submitted_by=row.submitted_by,
        cancelled_by=row.cancelled_by,
        attempt_log=tuple(Attempt.from_dict(dict(a)) for a in row.attempt_log or ()),
    )


class SqlOperationRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, op: Operation) -> Operation:
        try:
            with self._sessions.begin() as session:
                seq = session.scalar(select(func.coalesce(func.max(OperationRow.seq), 0))) or 0
                session.add(OperationRow(**_to_row(op), seq=seq + 1))
                session.flush()  # the operation first: its tags reference it
                session.add_all(
                    OperationTagRow(operation_id=op.id, tag=tag) for tag in dict.fromkeys(op.tags)
                )
        except IntegrityError:
            if op.idempotency_key is None:
                raise
            existing = self.get_by_idempotency_key(op.idempotency_key)
            if existing is None:
                raise
            return existing
        return op

    def get(self, op_id: str) -> Operation | None:
        with self._sessions() as session:
            row = session.get(OperationRow, op_id)
            return None if row is None else _to_domain(row)

    def get_by_idempotency_key(self, key: str) -> Operation | None:
        with self._sessions() as session:
            row = session.scalar(select(OperationRow).where(OperationRow.idempotency_key == key))
            return None if row is None else _to_domain(row)

    def save(self, op: Operation, *, expected: OperationStatus) -> bool:
        skipped = (*_SET_AT_CREATION, *_OWNERSHIP)
        values = {k: v for k, v in _to_row(op).items() if k not in skipped}
        with self._sessions.begin() as session:
            result = session.execute(
                update(OperationRow)
                .where(
                    OperationRow.id == op.id,
                    OperationRow.status == expected.value,
                    OperationRow.owner_id.is_not_distinct_from(op.owner_id),
                )
                .values(**values)
            )
            return _rowcount(result) == 1

    def claim(self, op: Operation) -> bool:
        """Store ``op`` (running, owned by its ``owner_id``) only if its row is still pending and owned
        by nobody else; the row is locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) so two backends
        never both claim it."""
        values = {k: v for k, v in _to_row(op).items() if k not in _SET_AT_CREATION}
        claimable = (
            OperationRow.id == op.id,
            OperationRow.status == OperationStatus.PENDING.value,
            or_(OperationRow.owner_id.is_(None), OperationRow.owner_id == op.owner_id),
        )
        with self._sessions.begin() as session:
            locked = session.scalar(
                select(OperationRow.id).where(*claimable).with_for_update(skip_locked=True)
            )
            if locked is None:  # not pending, adopted, or another backend holds the row right now
                return False
            result = session.execute(update(OperationRow).where(*claimable).values(**values))
            return _rowcount(result) == 1

    def adopt(self, op_id: str, *, previous_owner: str | None, new_owner: str) -> bool:
        """Move an unfinished operation from ``previous_owner`` to ``new_owner`` (compare-and-set)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(OperationRow)
                .where(
                    OperationRow.id == op_id,
                    OperationRow.owner_id.is_not_distinct_from(previous_owner),
                    OperationRow.status.in_(sorted(s.value for s in UNFINISHED_STATUSES)),
                )
                .values(owner_id=new_owner)
            )
            return _rowcount(result) == 1

    def find(self, where: OperationFilter, *, limit: int, offset: int) -> tuple[list[Operation], int]:
        query = _filtered(select(OperationRow), where)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(OperationRow.seq.desc(), OperationRow.created_at.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            return [_to_domain(r) for r in rows], total

    def summaries(self, op_ids: Collection[str], *, histories: Collection[str]) -> list[OperationSummary]:
        ids, with_history = sorted(op_ids), set(histories)
        found: list[OperationSummary] = []
        with self._sessions() as session:
            for start in range(0, len(ids), SUMMARIES_PER_STATEMENT):
                chunk = ids[start : start + SUMMARIES_PER_STATEMENT]
                rows = session.execute(_summaries_query(chunk, [i for i in chunk if i in with_history]))
                found.extend(
                    OperationSummary(
                        op_id,
                        OperationStatus(status),
                        (message or "") if code is not None else None,
                        model,
                        tuple(history or ()),
                    )
                    for op_id, status, code, message, model, history in rows
                )
        return found

    def pending_ids(self) -> list[str]:
        with self._sessions() as session:
            query = (
                select(OperationRow.id)
                .where(OperationRow.status == OperationStatus.PENDING.value)
                .order_by(OperationRow.seq, OperationRow.created_at)
            )
            return list(session.scalars(query).all())

    def count_by_status(self) -> dict[OperationStatus, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(OperationRow.status, func.count()).group_by(OperationRow.status)
            ).all()
            return {OperationStatus(status): count for status, count in rows}

    def project_summaries(self) -> list[ProjectSummary]:
        query = select(
            OperationRow.project,
            OperationRow.status,
            func.count(),
            func.max(OperationRow.created_at),
            func.max(OperationRow.updated_at),
            func.max(OperationRow.completed_at),
        ).group_by(OperationRow.project, OperationRow.status)
        counts: dict[str, dict[OperationStatus, int]] = {}
        latest: dict[str, datetime] = {}
        with self._sessions() as session:
            for project, status, count, created, updated, completed in session.execute(query).all():
                counts.setdefault(project, {})[OperationStatus(status)] = count
                # max() keeps the column's UTCDateTime type: aware UTC datetimes on both databases.
                moments = [m for m in (created, updated, completed, latest.get(project)) if m is not None]
                latest[project] = max(moments)
        summaries = [ProjectSummary(p, counts[p], latest[p]) for p in counts]
        return sorted(summaries, key=lambda s: (s.last_activity, s.project), reverse=True)

    def ping(self) -> None:
        with self._sessions() as session:
            session.execute(text("SELECT 1"))


def _summaries_query(op_ids: list[str], histories: list[str]) -> Select[Any]:
    # The model is read out of the result in SQL: a result carries its whole history too.
    history = (
        case((OperationRow.id.in_(histories), OperationRow.history), else_=null()) if histories else null()
    )
    return select(
        OperationRow.id,
        OperationRow.status,
        OperationRow.error_code,
        OperationRow.error_message,
        OperationRow.result["model"],
        history,
    ).where(OperationRow.id.in_(op_ids))


def _filtered(query: Select[Any], where: OperationFilter) -> Select[Any]:
    if where.statuses:
        query = query.where(OperationRow.status.in_([s.value for s in where.statuses]))
    if where.unfinished_only:
        query = query.where(OperationRow.status.in_(sorted(s.value for s in UNFINISHED_STATUSES)))
    if where.op_type:
        query = query.where(OperationRow.type == where.op_type)
    if where.project:
        query = query.where(OperationRow.project == where.project)
    if where.workload:
        query = query.where(OperationRow.workload == where.workload)
    for tag in dict.fromkeys(where.tags):  # every tag must be there: one EXISTS each
        query = query.where(
            exists().where(OperationTagRow.operation_id == OperationRow.id, OperationTagRow.tag == tag)
        )
    return query


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
