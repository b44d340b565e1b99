"""The session state machine: one transition function, illegal moves raise, terminal is final."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from host_service.domain.sessions import TERMINAL_STATUSES, Session, SessionStatus, transition
from host_service.errors import IllegalTransitionError
from shared.contracts.host import TERMINAL_SESSION_STATUSES, SessionStatusName
from tests.host_service.fakes import new_session

NOW = datetime(2025, 1, 5, tzinfo=UTC)


def _session(status: SessionStatus = SessionStatus.STARTING) -> Session:
    session = new_session(status=status)
    session.worker_pid = 99
    return session


def test_a_session_runs_then_completes() -> None:
    session = _session()
    transition(session, SessionStatus.RUNNING, now=NOW)
    transition(session, SessionStatus.COMPLETED, now=NOW)
    assert session.is_terminal
    assert session.worker_pid is None


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("target", list(SessionStatus))
def test_terminal_sessions_never_move(terminal: SessionStatus, target: SessionStatus) -> None:
    with pytest.raises(IllegalTransitionError, match="cannot go from"):
        transition(_session(terminal), target, now=NOW)


def test_a_starting_session_cannot_complete_without_running() -> None:
    with pytest.raises(IllegalTransitionError):
        transition(_session(), SessionStatus.COMPLETED, now=NOW)


def test_a_stopping_session_may_still_complete_when_training_won_the_race() -> None:
    session = _session(SessionStatus.STOPPING)
    transition(session, SessionStatus.COMPLETED, now=NOW)
    assert session.status is SessionStatus.COMPLETED


def test_failure_records_the_error() -> None:
    session = _session(SessionStatus.RUNNING)
    transition(session, SessionStatus.FAILED, now=NOW, error={"code": "worker_crashed", "message": "x"})
    assert session.error == {"code": "worker_crashed", "message": "x"}


def test_session_round_trips_through_its_record() -> None:
    session = _session(SessionStatus.RUNNING)
    session.last_heartbeat = NOW
    session.progress = {"percentage": 10.0, "phase": "training"}
    assert Session.from_record(session.to_record()) == session


def test_domain_and_wire_statuses_agree() -> None:
    assert {s.value for s in SessionStatus} == {s.value for s in SessionStatusName}
    assert {s.value for s in TERMINAL_STATUSES} == {s.value for s in TERMINAL_SESSION_STATUSES}
