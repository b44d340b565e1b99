"""SweepDriver: advances sweeps as their trials' events arrive, with a slow poll as a safety net.

The backend's event broker tells every operation event to the driver's listener (on the publishing
thread: the training thread too). A new epoch or step row of a trial this backend drives is put to the
pruner there and then, in memory (microseconds: nothing else happens at an epoch, so a sweep's trial
trains as fast as a lone training); a status change, or a trial the pruner stops, marks its sweep due and
wakes the driver, which advances the due sweeps on a worker thread: a prune cancels the trial within the
epoch, and the next trial starts as soon as one ends. Every ``poll_s`` the driver also makes a full
pass (``SweepService.tick``): it adopts the sweeps of dead backends and catches anything no event
reported (a trial followed on a host through another backend, a cancel through another backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from backend.domain.operations import Operation
from backend.services.events import EventBroker, OperationEvent

logger = logging.getLogger(__name__)

#: How long a shutdown waits for a sweep pass in flight (it talks to the database and Optuna).
STOP_GRACE_S = 30.0


class DrivenSweeps(Protocol):
    """What the driver drives: :class:`~backend.services.sweeps.SweepService`."""

    def watched(self, op_id: str) -> str | None: ...
    def prunes(self, op: Operation) -> bool: ...
    def on_wake(self, wake: Callable[[str], None]) -> None: ...
    def tick(self) -> None: ...
    def advance_sweeps(self, sweep_ids: Iterable[str]) -> None: ...


class SweepDriver:
    def __init__(self, service: DrivenSweeps, broker: EventBroker, *, poll_s: float) -> None:
        self._service = service
        self._broker = broker
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._due: set[str] = set()
        self._rows: dict[str, int] = {}  # trial op id -> history rows seen: a new row is news
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        broker.listen(self._on_event)
        service.on_wake(self.wake)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="sweep-driver")

    async def stop(self) -> None:
        """Stop after the pass in flight: a pass runs on a worker thread, which a cancel would not stop,
        and it must not outlive the Optuna connections the shutdown closes next."""
        task, self._task, self._loop = self._task, None, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=STOP_GRACE_S)
        except TimeoutError:
            logger.warning("a sweep pass did not end within %.0f s of shutdown; leaving it", STOP_GRACE_S)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._stopping = False

    def wake(self, sweep_id: str) -> None:
        """Advance ``sweep_id`` soon (from any thread)."""
        loop = self._loop
        if loop is None:
            return
        with self._lock:
            self._due.add(sweep_id)
        with contextlib.suppress(RuntimeError):  # the loop closed: the backend is stopping
            loop.call_soon_threadsafe(self._wake.set)

    def _on_event(self, event: OperationEvent) -> None:
        op = event.operation
        sweep_id = self._service.watched(op.id)
        if sweep_id is None:
            return
        if event.kind == "progress":
            if self._rows.get(op.id) == len(op.history):
                return  # a progress tick within an epoch: no new value
            self._rows[op.id] = len(op.history)
            if not self._service.prunes(op):
                return  # its values reach Optuna when it ends
        elif op.is_terminal:
            self._rows.pop(op.id, None)
        self.wake(sweep_id)

    async def _run(self) -> None:
        next_pass = 0.0
        while not self._stopping:
            self._wake.clear()
            with self._lock:
                due, self._due = self._due, set()
            if time.monotonic() >= next_pass:
                await asyncio.to_thread(self._service.tick)
                next_pass = time.monotonic() + self._poll_s
            elif due:
                await asyncio.to_thread(self._service.advance_sweeps, sorted(due))
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(next_pass - time.monotonic(), 0.0))
