from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.domain.operations import (
    TERMINAL_STATUSES,
    Operation,
    OperationError,
    OperationStatus,
    can_transition,
    transition,
)
from backend.errors import IllegalTransitionError

T0 = datetime(2025, 1, 5, tzinfo=UTC)


def make_op(status: OperationStatus = OperationStatus.PENDING) -> Operation:
    return Operation(
        id="op_1",
        type="training",
        status=status,
        execution_mode="local",
        mode_reason="test",
        request={},
        created_at=T0,
        updated_at=T0,
    )


def test_start_sets_started_at_and_completion_sets_completed_at_and_full_progress() -> None:
    running = transition(make_op(), OperationStatus.RUNNING, T0 + timedelta(seconds=1))
    done = transition(running, OperationStatus.COMPLETED, T0 + timedelta(seconds=5), result={"model": 1})
    assert running.started_at == T0 + timedelta(seconds=1)
    assert done.completed_at == T0 + timedelta(seconds=5)
    assert done.result == {"model": 1}
    assert done.progress.percentage == 100.0


def test_failure_carries_its_error() -> None:
    failed = transition(make_op(), OperationStatus.FAILED, T0, error=OperationError("interrupted", "gone"))
    assert failed.error == OperationError("interrupted", "gone")


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("target", list(OperationStatus))
def test_no_transition_leaves_a_terminal_status(terminal: OperationStatus, target: OperationStatus) -> None:
    with pytest.raises(IllegalTransitionError, match="already"):
        transition(make_op(terminal), target, T0)


def test_pending_cannot_jump_to_completed_or_cancelling() -> None:
    assert not can_transition(OperationStatus.PENDING, OperationStatus.COMPLETED)
    assert not can_transition(OperationStatus.PENDING, OperationStatus.CANCELLING)
    with pytest.raises(IllegalTransitionError) as info:
        transition(make_op(), OperationStatus.COMPLETED, T0)
    assert info.value.status_code == 409
    assert info.value.details["requested"] == "completed"


def test_cancelling_may_still_complete_when_the_model_was_already_stored() -> None:
    assert can_transition(OperationStatus.CANCELLING, OperationStatus.COMPLETED)
    assert can_transition(OperationStatus.CANCELLING, OperationStatus.CANCELLED)
