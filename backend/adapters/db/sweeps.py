"""SqlSweepRepository: sweeps and their trials in SQLite or PostgreSQL, mapped row <-> domain."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import SweepRow, SweepTrialRow
from backend.domain.sweeps import Sweep, SweepStatus, SweepTrial


def _sweep(row: SweepRow) -> Sweep:
    return Sweep(
        id=row.id,
        status=SweepStatus(row.status),
        request=row.request,
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        error=row.error,
        best_alias=row.best_alias,
        submitted_by=row.submitted_by,
        owner_id=row.owner_id,
    )


def _trial(row: SweepTrialRow) -> SweepTrial:
    return SweepTrial(
        sweep_id=row.sweep_id,
        number=row.number,
        optuna_trial_id=row.optuna_trial_id,
        operation_id=row.operation_id,
        params=dict(row.params),
        state=row.state,
        objective=row.objective,
        reported={int(k): float(v) for k, v in (row.reported or {}).items()},
        error=row.error,
    )


UNFINISHED = (SweepStatus.RUNNING, SweepStatus.CANCELLING)


class SqlSweepRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, sweep: Sweep) -> None:
        with self._sessions.begin() as session:
            session.add(
                SweepRow(
                    id=sweep.id,
                    status=sweep.status.value,
                    request=sweep.request,
                    created_at=sweep.created_at,
                    updated_at=sweep.updated_at,
                    submitted_by=sweep.submitted_by,
                    owner_id=sweep.owner_id,
                )
            )

    def save(self, sweep: Sweep, *, expected: SweepStatus) -> bool:
        """Store ``sweep``'s status and outcome if its stored status is still ``expected`` (a cancel and
        the driver's end of the sweep cannot both win); its owner only ``adopt`` moves."""
        with self._sessions.begin() as session:
            row = session.get(SweepRow, sweep.id, with_for_update=True)
            if row is None or row.status != expected.value:
                return False
            row.status = sweep.status.value
            row.updated_at = sweep.updated_at
            row.completed_at = sweep.completed_at
            row.error = sweep.error
            row.best_alias = sweep.best_alias
            return True

    def adopt(self, sweep_id: str, *, previous_owner: str | None, new_owner: str) -> bool:
        """Move an unfinished sweep from ``previous_owner`` to ``new_owner`` (compare-and-set: of two
        backends adopting a dead owner's sweep at once, one wins)."""
        with self._sessions.begin() as session:
            result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(SweepRow)
                .where(
                    SweepRow.id == sweep_id,
                    SweepRow.owner_id.is_not_distinct_from(previous_owner),
                    SweepRow.status.in_([s.value for s in UNFINISHED]),
                )
                .values(owner_id=new_owner)
            )
            return result.rowcount == 1

    def get(self, sweep_id: str) -> Sweep | None:
        with self._sessions() as session:
            row = session.get(SweepRow, sweep_id)
            return None if row is None else _sweep(row)

    def all(self, *, limit: int = 200) -> list[Sweep]:
        with self._sessions() as session:
            rows = session.scalars(select(SweepRow).order_by(SweepRow.created_at.desc()).limit(limit))
            return [_sweep(r) for r in rows]

    def unfinished(self) -> list[Sweep]:
        with self._sessions() as session:
            rows = session.scalars(
                select(SweepRow)
                .where(SweepRow.status.in_([s.value for s in UNFINISHED]))
                .order_by(SweepRow.created_at)
            )
            return [_sweep(r) for r in rows]

    def put_trial(self, trial: SweepTrial) -> None:
        with self._sessions.begin() as session:
            session.merge(
                SweepTrialRow(
                    sweep_id=trial.sweep_id,
                    number=trial.number,
                    optuna_trial_id=trial.optuna_trial_id,
                    operation_id=trial.operation_id,
                    params=trial.params,
                    state=trial.state,
                    objective=trial.objective,
                    reported={str(k): v for k, v in trial.reported.items()},
                    error=trial.error,
                )
            )

    def trials(self, sweep_id: str) -> list[SweepTrial]:
        with self._sessions() as session:
            rows = session.scalars(
                select(SweepTrialRow).where(SweepTrialRow.sweep_id == sweep_id).order_by(SweepTrialRow.number)
            )
            return [_trial(r) for r in rows]

    def trials_of(self, sweep_ids: Collection[str]) -> dict[str, list[SweepTrial]]:
        """Sweep id -> its trials by number, for every sweep of ``sweep_ids`` (in one statement)."""
        found: dict[str, list[SweepTrial]] = {sweep_id: [] for sweep_id in sweep_ids}
        if not found:
            return found
        with self._sessions() as session:
            rows = session.scalars(
                select(SweepTrialRow)
                .where(SweepTrialRow.sweep_id.in_(list(found)))
                .order_by(SweepTrialRow.sweep_id, SweepTrialRow.number)
            )
            for row in rows:
                found[row.sweep_id].append(_trial(row))
        return found
