"""SqlOperationRepository: operations in SQLite or PostgreSQL, mapped explicitly row <-> domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import OperationRow
from backend.domain.operations import Operation, OperationError, OperationStatus, Progress


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
        "owner_id": op.owner_id,
        "request_hash": op.request_hash,
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
        owner_id=row.owner_id,
        request_hash=row.request_hash,
    )


class SqlOperationRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, op: Operation) -> Operation:
        try:
            with self._sessions.begin() as session:
                seq = session.scalar(select(func.coalesce(func.max(OperationRow.seq), 0))) or 0
                session.add(OperationRow(**_to_row(op), seq=seq + 1))
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
        values = _to_row(op)
        del values["id"], values["created_at"], values["idempotency_key"], values["request_hash"]
        with self._sessions.begin() as session:
            result = session.execute(
                update(OperationRow)
                .where(OperationRow.id == op.id, OperationRow.status == expected.value)
                .values(**values)
            )
            return _rowcount(result) == 1

    def find(
        self, *, statuses: Sequence[OperationStatus], op_type: str | None, limit: int, offset: int
    ) -> tuple[list[Operation], int]:
        query = select(OperationRow)
        if statuses:
            query = query.where(OperationRow.status.in_([s.value for s in statuses]))
        if op_type:
            query = query.where(OperationRow.type == op_type)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(OperationRow.seq.desc(), OperationRow.created_at.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            return [_to_domain(r) for r in rows], total

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

    def ping(self) -> None:
        with self._sessions() as session:
            session.execute(text("SELECT 1"))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
