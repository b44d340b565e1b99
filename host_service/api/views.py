"""Domain sessions to wire views (explicit mapping at the edge)."""

from __future__ import annotations

from host_service.domain.sessions import Session
from shared.contracts.host import HostLogLine, SessionError, SessionStatusName, SessionView
from shared.contracts.training import ProgressUpdate


def session_view(session: Session) -> SessionView:
    return SessionView(
        session_id=session.session_id,
        operation_id=session.operation_id,
        status=SessionStatusName(session.status.value),
        progress=ProgressUpdate.model_validate(session.progress) if session.progress else None,
        device=session.device,
        created_at=session.created_at,
        updated_at=session.updated_at,
        last_heartbeat=session.last_heartbeat,
        error=SessionError.model_validate(session.error) if session.error else None,
        result_available=session.result_available,
        result_acknowledged=session.result_acknowledged,
        callback_delivered=session.callback_delivered,
        worker_pid=session.worker_pid,
        recent_epochs=session.extra.get("recent_epochs", []),
        recent_logs=[HostLogLine.model_validate(line) for line in session.extra.get("recent_logs", [])],
        resumed_from_epoch=session.extra.get("resumed_from_epoch"),
    )
