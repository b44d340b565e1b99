"""SqlInstanceRepository: the backend_instances table (one row per live backend process)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import InstanceRow
from backend.domain.instances import BackendInstance


def _to_domain(row: InstanceRow) -> BackendInstance:
    return BackendInstance(
        id=row.id,
        hostname=row.hostname,
        pid=row.pid,
        machine_key=row.machine_key,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
    )


class SqlInstanceRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def register(self, instance: BackendInstance) -> None:
        with self._sessions.begin() as session:
            session.merge(
                InstanceRow(
                    id=instance.id,
                    hostname=instance.hostname[:255],
                    pid=instance.pid,
                    machine_key=instance.machine_key,
                    started_at=instance.started_at,
                    heartbeat_at=instance.heartbeat_at,
                )
            )

    def heartbeat(self, instance_id: str, at: datetime) -> bool:
        """Renew the lease; False when the row is gone (another process declared this one dead)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(InstanceRow).where(InstanceRow.id == instance_id).values(heartbeat_at=at)
            )
            return int(getattr(result, "rowcount", 0)) == 1

    def remove(self, instance_id: str) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(InstanceRow).where(InstanceRow.id == instance_id))

    def all(self) -> list[BackendInstance]:
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(select(InstanceRow)).all()]
