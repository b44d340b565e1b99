"""ReplayGuard: an id accepted once while its timestamp is acceptable, bounded, refusing when full."""

from __future__ import annotations

import pytest

from shared.contracts.replay import ReplayError, ReplayGuard

NOW = 1_700_000_000.0


class FixedClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_id_seen_before_is_refused_as_replayed() -> None:
    guard = ReplayGuard(300, clock=FixedClock())
    guard.remember("msg_1", int(NOW))
    with pytest.raises(ReplayError) as caught:
        guard.remember("msg_1", int(NOW))
    assert caught.value.code == "replayed"


def test_an_id_is_remembered_until_its_timestamp_leaves_the_window() -> None:
    clock = FixedClock()
    guard = ReplayGuard(300, clock=clock)
    guard.remember("msg_1", int(NOW) + 300)  # signed 300 s "in the future": acceptable until NOW + 600
    clock.now = NOW + 600
    with pytest.raises(ReplayError):
        guard.remember("msg_1", int(NOW) + 300)
    clock.now = NOW + 601
    assert len(guard) == 0


def test_a_full_guard_refuses_rather_than_forgets() -> None:
    clock = FixedClock()
    guard = ReplayGuard(300, capacity=2, clock=clock)
    guard.remember("msg_1", int(NOW))
    guard.remember("msg_2", int(NOW))
    with pytest.raises(ReplayError) as caught:
        guard.remember("msg_3", int(NOW))
    assert caught.value.code == "replay_guard_full"
    with pytest.raises(ReplayError, match="already received"):
        guard.remember("msg_1", int(NOW))
    clock.now = NOW + 301
    guard.remember("msg_3", int(NOW) + 301)
    assert len(guard) == 1
