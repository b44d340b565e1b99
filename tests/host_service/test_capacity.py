"""Claiming a slot is atomic: concurrent claims at capacity never share a slot."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from host_service.errors import CapacityExhaustedError
from host_service.services.capacity import CapacityLedger


def test_claims_beyond_capacity_are_refused_with_a_retry_hint() -> None:
    ledger = CapacityLedger(1, retry_after_s=7)
    ledger.claim("a")
    with pytest.raises(CapacityExhaustedError) as caught:
        ledger.claim("b")
    assert caught.value.retry_after_s == 7


def test_release_frees_the_slot() -> None:
    ledger = CapacityLedger(1, retry_after_s=1)
    ledger.claim("a")
    ledger.release("a")
    ledger.claim("b")
    assert ledger.in_use == 1


@pytest.mark.parametrize("capacity", [1, 3])
def test_many_concurrent_claims_win_exactly_capacity_slots(capacity: int) -> None:
    ledger = CapacityLedger(capacity, retry_after_s=1)
    barrier = threading.Barrier(16)

    def claim(index: int) -> bool:
        barrier.wait(timeout=10)
        try:
            ledger.claim(f"s{index}")
        except CapacityExhaustedError:
            return False
        return True

    with ThreadPoolExecutor(16) as pool:
        wins = list(pool.map(claim, range(16)))
    assert sum(wins) == capacity
    assert ledger.in_use == capacity
