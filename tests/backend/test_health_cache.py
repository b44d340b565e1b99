"""/health answers from a database check a few seconds old at most; the answer expires and is re-checked."""

from __future__ import annotations

from backend.services.health import DatabaseHealth


class CountingPing:
    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    def __call__(self) -> None:
        self.calls += 1
        if self.failing:
            raise ConnectionError("database gone")


class SteppedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_answer_is_reused_without_a_database_round_trip() -> None:
    ping, clock = CountingPing(), SteppedClock()
    health = DatabaseHealth(ping, max_age_s=2.0, monotonic=clock)
    assert health.fresh() is None
    assert health.check().ok
    clock.now += 1.9
    status = health.fresh()
    assert status is not None
    assert status.ok
    assert health.check().ok
    assert ping.calls == 1


def test_the_cached_answer_expires_and_the_next_check_sees_a_failure() -> None:
    ping, clock = CountingPing(), SteppedClock()
    health = DatabaseHealth(ping, max_age_s=2.0, monotonic=clock)
    assert health.check().ok
    ping.failing = True
    clock.now += 2.0
    assert health.fresh() is None
    status = health.check()
    assert (status.ok, status.error) == (False, "ConnectionError")
    assert ping.calls == 2


def test_zero_max_age_checks_on_every_call() -> None:
    ping = CountingPing()
    health = DatabaseHealth(ping, max_age_s=0.0, monotonic=SteppedClock())
    health.check()
    assert health.fresh() is None
    health.check()
    assert ping.calls == 2
