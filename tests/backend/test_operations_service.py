from __future__ import annotations

from pathlib import Path

import pytest

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.domain.operations import OperationStatus
from backend.services.events import EventBroker
from backend.services.operations import OperationsService
from shared.contracts.training import ProgressUpdate
from tests.backend.fakes import FixedClock


def make_service(tmp_path: Path, interval: float) -> tuple[OperationsService, SqlOperationRepository]:
    engine = build_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    migrate(engine)
    repo = SqlOperationRepository(engine)
    return OperationsService(repo, FixedClock(), EventBroker(), progress_interval_s=interval), repo


def update(pct: float, **extra: object) -> ProgressUpdate:
    return ProgressUpdate(percentage=pct, phase="training", message=f"{pct}", extra=dict(extra))


def test_readers_see_live_progress_while_writes_are_throttled(tmp_path: Path) -> None:
    service, repo = make_service(tmp_path, interval=3600.0)
    op, _ = service.create(op_type="training", request={}, execution_mode="local", mode_reason="t")
    service.mark_running(op.id)
    for pct in range(1, 200):
        service.report_progress(op.id, update(pct / 2))
    assert service.get(op.id).progress.percentage == 99.5
    stored = repo.get(op.id)
    assert stored is not None
    assert stored.progress.percentage == 0.0  # not one write in the interval


def test_progress_never_goes_backwards_and_history_accumulates(tmp_path: Path) -> None:
    service, repo = make_service(tmp_path, interval=0.0)
    op, _ = service.create(op_type="training", request={}, execution_mode="local", mode_reason="t")
    service.mark_running(op.id)
    service.report_progress(op.id, update(50, epoch_metrics={"epoch": 0, "train_loss": 1.0}))
    service.report_progress(op.id, update(40, epoch_metrics={"epoch": 1, "train_loss": 0.9}))
    live = service.get(op.id)
    assert live.progress.percentage == 50
    assert [row["epoch"] for row in live.history] == [0, 1]
    stored = repo.get(op.id)
    assert stored is not None
    assert len(stored.history) == 2


def test_completion_persists_result_without_duplicating_history(tmp_path: Path) -> None:
    service, repo = make_service(tmp_path, interval=3600.0)
    op, _ = service.create(op_type="training", request={}, execution_mode="local", mode_reason="t")
    service.mark_running(op.id)
    result = {
        "model": {"version": 1},
        "test_metrics": {"accuracy": 0.7},
        "history": [{"epoch": 0}],
        "warnings": ["w"],
    }
    service.complete(op.id, result, device="cpu")
    stored = repo.get(op.id)
    assert stored is not None
    assert stored.status is OperationStatus.COMPLETED
    assert stored.result == {"model": {"version": 1}, "test_metrics": {"accuracy": 0.7}, "warnings": ["w"]}
    assert stored.history == ({"epoch": 0},)
    assert stored.warnings == ("w",)


def test_claiming_a_cancelled_operation_fails(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path, interval=0.0)
    op, _ = service.create(op_type="training", request={}, execution_mode="local", mode_reason="t")
    assert service.request_cancel(op.id).status is OperationStatus.CANCELLED
    assert service.mark_running(op.id) is None


def test_unknown_operation_raises_not_found(tmp_path: Path) -> None:
    from backend.errors import OperationNotFoundError

    service, _ = make_service(tmp_path, interval=0.0)
    with pytest.raises(OperationNotFoundError):
        service.get("op_nope")


def test_a_listener_hears_every_event_on_the_publishing_thread_and_its_fault_stays_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    migrate(engine)
    broker = EventBroker()
    heard: list[tuple[str, OperationStatus, int]] = []
    broker.listen(
        lambda event: heard.append((event.kind, event.operation.status, len(event.operation.history)))
    )

    def faulty(_event: object) -> None:
        raise RuntimeError("listener bug")

    broker.listen(faulty)
    service = OperationsService(SqlOperationRepository(engine), FixedClock(), broker, progress_interval_s=0.0)
    op, _ = service.create(op_type="training", request={}, execution_mode="local", mode_reason="t")
    service.mark_running(op.id)
    service.report_progress(op.id, update(50.0, epoch_metrics={"epoch": 1, "val_loss": 0.5}))
    service.complete(op.id, {"history": [{"epoch": 1, "val_loss": 0.5}]})
    assert heard == [
        ("status", OperationStatus.PENDING, 0),
        ("status", OperationStatus.RUNNING, 0),
        ("progress", OperationStatus.RUNNING, 1),  # the epoch's row is in the operation it carries
        ("status", OperationStatus.COMPLETED, 1),
    ]
    assert service.get(op.id).status is OperationStatus.COMPLETED  # the faulty listener failed nothing
    assert caplog.text.count("an event listener failed") == 4
