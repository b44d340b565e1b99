"""The sweep driver's listener: an epoch of a trial the pruner keeps starts no pass (the pass through the
database and Optuna once cost each ~10 ms epoch of the training beside it more than the epoch itself);
a prune and a status change advance the sweep at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import pytest

from backend.domain.operations import Operation, OperationStatus
from backend.services.events import EventBroker, OperationEvent
from backend.services.sweep_driver import SweepDriver

pytestmark = pytest.mark.anyio

SWEEP = "sw0000000001"
TRIAL = "op_trial"


class RecordingSweeps:
    """A sweep service that watches one trial, prunes it from ``prune_at`` rows on, and records passes."""

    def __init__(self, prune_at: int) -> None:
        self.prune_at = prune_at
        self.asked: list[int] = []
        self.advanced: list[list[str]] = []
        self.passed = threading.Event()

    def watched(self, op_id: str) -> str | None:
        return SWEEP if op_id == TRIAL else None

    def prunes(self, op: Operation) -> bool:
        self.asked.append(len(op.history))
        return len(op.history) >= self.prune_at

    def on_wake(self, wake: Callable[[str], None]) -> None:
        pass

    def tick(self) -> None:
        pass

    def advance_sweeps(self, sweep_ids: Iterable[str]) -> None:
        self.advanced.append(list(sweep_ids))
        self.passed.set()


def trial(rows: int, status: OperationStatus = OperationStatus.RUNNING) -> Operation:
    now = datetime.now(UTC)
    history = tuple({"epoch": n, "val_loss": 1.0 / n} for n in range(1, rows + 1))
    return Operation(TRIAL, "training", status, "local", "", {}, now, now, history=history)


async def drive(prune_at: int, events: list[OperationEvent], *, expect_pass: bool) -> RecordingSweeps:
    sweeps = RecordingSweeps(prune_at)
    broker = EventBroker()
    driver = SweepDriver(sweeps, broker, poll_s=3600.0)
    await driver.start()
    try:
        await asyncio.sleep(0.05)  # the first pass (a tick) is out of the way
        for event in events:
            await asyncio.to_thread(broker.publish, event)  # from another thread, as a training does
        # Waits for the pass that should come (with a deadline), or gives one that should not the time.
        await asyncio.to_thread(sweeps.passed.wait, 10.0 if expect_pass else 0.2)
    finally:
        await driver.stop()
    return sweeps


async def test_epochs_the_pruner_keeps_start_no_pass() -> None:
    progress = [OperationEvent("progress", trial(rows)) for rows in (1, 1, 2, 3, 3, 4)]
    sweeps = await drive(prune_at=99, events=progress, expect_pass=False)
    assert sweeps.asked == [1, 2, 3, 4]  # once per new row, not per progress tick
    assert sweeps.advanced == []


async def test_an_epoch_the_pruner_stops_and_a_status_change_advance_the_sweep() -> None:
    progress = [OperationEvent("progress", trial(rows)) for rows in (1, 2, 3)]
    pruned = await drive(prune_at=3, events=progress, expect_pass=True)
    assert pruned.advanced[0] == [SWEEP]
    status = [OperationEvent("status", trial(2, OperationStatus.COMPLETED))]
    ended = await drive(prune_at=99, events=status, expect_pass=True)
    assert ended.advanced[0] == [SWEEP]
