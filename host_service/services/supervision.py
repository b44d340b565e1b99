"""Follows one session from data download to a terminal status, and always frees its slot.

The child's messages and its exit wake the follower (``WorkerHandle.wait``); ``poll_interval_s`` only
bounds how long it sleeps when the child is silent (persisting progress, escalating a stop).

A child that reports how it ended (completed, failed, cancelled) has written its result first, so the
session ends on that message, and ``on_end`` hears of it (the result is sent, the slot freed), while the
process exits: its exit is bookkeeping (tens of milliseconds of interpreter teardown under load) that
the user no longer waits for. The child is reaped all the same (terminate, then kill, if it lingers).

The launcher readies a worker for the next session once this one's training is under way: at the
child's first progress report from within its fit (one that names an epoch: the data is loaded and the
features computed by then), after ``prepare_next_after_s`` of a child that reports no epoch, or at the
session's end, whichever comes first. Forked at the launch instead, the next worker's fork and warm-up
would take the CPU from this training's own start (loading its data, on a machine of few cores).

Stop escalates: the cancel event first (training raises TrainingCancelledError at the next batch), then
``terminate()`` after ``grace_s``, then ``kill()`` after another ``grace_s``. A child that exits without
saying how it ended is a crash (``worker_crashed`` with its exit code).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_service.domain.ports import Clock, WorkerHandle, WorkerLauncher, WorkerMessage, WorkerSpec
from host_service.domain.sessions import Session, SessionStatus, record_epoch, record_log, transition
from host_service.errors import DatasetError
from host_service.services.checkpoint_shipper import resume_files
from host_service.services.datasets import DatasetCache
from shared.aio import to_thread_to_its_end

logger = logging.getLogger(__name__)

_OUTCOMES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class RunnerTimings:
    grace_s: float = 10.0
    poll_interval_s: float = 0.25
    heartbeat_interval_s: float = 2.0
    persist_interval_s: float = 2.0
    #: When a child that reported no epoch yet counts as under way (see the module's docstring).
    prepare_next_after_s: float = 1.0


class SessionRunner:
    """``persist`` queues the session's state to be written (``SessionWriter``: in order, off the event
    loop, the latest state winning); every status change is queued at once."""

    def __init__(
        self,
        session: Session,
        spec: WorkerSpec,
        *,
        datasets: DatasetCache,
        launcher: WorkerLauncher,
        persist: Callable[[Session], object],
        clock: Clock,
        timings: RunnerTimings,
        on_end: Callable[[Session], None] | None = None,
    ) -> None:
        self.session = session
        self._on_end = on_end
        self._spec = spec
        self._datasets = datasets
        self._launcher = launcher
        self._persist = persist
        self._clock = clock
        self._timings = timings
        self._worker: WorkerHandle | None = None
        self._launched: WorkerHandle | None = None
        self._stop_requested = False
        self._outcome: WorkerMessage | None = None
        self._in_fit = False
        self._next_prepared = False

    async def run(self) -> None:
        """Download data, start the child, follow it to the end (never raises but CancelledError)."""
        try:
            await self._datasets.provide(self.session.datasets, self._spec.data_dir)
            if self._spec.checkpoint_dir is not None:  # a resumed training's checkpoint, like its data
                await self._datasets.provide(resume_files(self.session), self._spec.checkpoint_dir)
            if self._stop_requested:
                self._end(
                    SessionStatus.CANCELLED, {"code": "cancelled", "message": "stopped before training"}
                )
                return
            self._worker = await self._launch()
            self.session.worker_pid = self._worker.pid
            self._move(SessionStatus.RUNNING)
            await self._follow(self._worker)
        except DatasetError as exc:
            self._end(
                SessionStatus.FAILED, {"code": exc.code, "message": exc.message, "details": exc.details}
            )
        except asyncio.CancelledError:
            worker = self._worker or self._launched  # launched, then cancelled before it was taken on
            if worker is not None:
                await self._reap(worker, patient=False)
            if not self._stop_requested:
                raise  # host shutdown: the session stays as it is; recovery settles it on the next start
            self._end(SessionStatus.CANCELLED, {"code": "cancelled", "message": "stopped before training"})

    async def _launch(self) -> WorkerHandle:
        """The child, launched in a thread. Cancelled meanwhile (a stop, the host's shutdown, a start
        whose record could not be written), once or again, it still waits for the launch to finish (a
        fork takes milliseconds) and keeps the child in ``_launched``, so that ``run`` reaps it rather
        than leave it training. ``_worker`` is set on the event loop only, right before the session
        moves to running: a stop sees no worker (and cancels the launch) until then."""

        def launch() -> WorkerHandle:
            self._launched = self._launcher.launch(self._spec)
            return self._launched

        return await to_thread_to_its_end(launch)

    def request_stop(self) -> None:
        if self.session.is_terminal or self._stop_requested:
            return
        self._stop_requested = True
        self._move(SessionStatus.STOPPING)
        if self._worker is not None:
            self._worker.request_cancel()

    @property
    def checkpoint_dir(self) -> Path | None:
        return self._spec.checkpoint_dir

    @property
    def has_worker(self) -> bool:
        return self._worker is not None

    async def _follow(self, worker: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        last_persist = started = loop.time()
        stop_started: float | None = None
        while self._outcome is None:
            self._apply(worker.drain())
            if self._outcome is not None or not worker.is_alive():
                self._apply(worker.drain())
                break
            now = loop.time()
            if self._in_fit or now - started >= self._timings.prepare_next_after_s:
                self._prepare_next()
            if self._stop_requested:
                stop_started = now if stop_started is None else stop_started
                self._escalate(worker, now - stop_started)
            if now - last_persist >= self._timings.persist_interval_s:
                self._persist(self.session)
                last_persist = now
            await worker.wait(self._timings.poll_interval_s)
        if self._outcome is not None:
            self._settle(None)  # the result is on disk: it counts now, not once the process has exited
        await self._reap(worker)
        if not self.session.is_terminal:
            self._settle(worker.exitcode)

    def _escalate(self, worker: WorkerHandle, elapsed: float) -> None:
        if elapsed >= 2 * self._timings.grace_s:
            logger.warning("session %s ignored terminate(); killing it", self.session.session_id)
            worker.kill()
        elif elapsed >= self._timings.grace_s:
            logger.warning(
                "session %s did not stop within %.1f s; terminating", self.session.session_id, elapsed
            )
            worker.terminate()

    async def _reap(self, worker: WorkerHandle, *, patient: bool = True) -> None:
        """Wait for the child to exit (it must, before its slot is freed): terminate, then kill.
        ``patient`` first gives it ``grace_s`` to exit on its own (it has just reported its outcome)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timings.grace_s
        actions = (None, worker.terminate, worker.kill) if patient else (worker.terminate, worker.kill)
        for action in actions:
            if action is not None:
                action()
                deadline = loop.time() + self._timings.grace_s
            while worker.is_alive() and loop.time() < deadline:
                worker.drain()  # a child cannot exit while its queue feeder waits on a full pipe
                await worker.wait(self._timings.poll_interval_s)
            if not worker.is_alive():
                return
        logger.error("session %s: child %s survived kill()", self.session.session_id, worker.pid)

    def _apply(self, messages: list[WorkerMessage]) -> None:
        for message in messages:
            self.session.last_heartbeat = self._clock()
            if message.kind == "progress":
                self.session.progress = message.body
                self._in_fit = self._in_fit or message.body.get("epoch") is not None
                record_epoch(self.session, message.body)
            elif message.kind == "log":
                record_log(self.session, message.body)
            elif message.kind in _OUTCOMES:
                self._outcome = message
            if "device" in message.body:
                self.session.device = str(message.body["device"])

    def _settle(self, exitcode: int | None) -> None:
        outcome = self._outcome
        if outcome is None:
            if self._stop_requested:
                stopped = {
                    "code": "cancelled",
                    "message": "stopped by force",
                    "details": {"exit_code": exitcode},
                }
                self._end(SessionStatus.CANCELLED, stopped)
            else:
                self._end(SessionStatus.FAILED, _crash(exitcode))
        elif outcome.kind == "completed":
            self.session.result_available = True
            self._end(SessionStatus.COMPLETED, None)
        elif outcome.kind == "cancelled":
            self._end(
                SessionStatus.CANCELLED, {"code": "cancelled", "message": outcome.body.get("message", "")}
            )
        else:
            self._end(SessionStatus.FAILED, {"details": {}, **outcome.body})

    def _prepare_next(self) -> None:
        if not self._next_prepared:
            self._next_prepared = True
            self._launcher.prepare_next()

    def _move(self, target: SessionStatus) -> None:
        transition(self.session, target, now=self._clock())
        self._persist(self.session)

    def _end(self, target: SessionStatus, error: dict[str, Any] | None) -> None:
        transition(self.session, target, now=self._clock(), error=error)
        self._persist(self.session)
        logger.info("session %s ended %s", self.session.session_id, target.value)
        if self._on_end is not None:
            self._on_end(self.session)
        self._prepare_next()


def _crash(exitcode: int | None) -> dict[str, Any]:
    return {
        "code": "worker_crashed",
        "message": f"the training process exited with code {exitcode} without a result "
        "(killed, out of memory or crashed); see the host log",
        "details": {"exit_code": exitcode},
    }
