"""SessionService: start, follow, stop, list and acknowledge training sessions; recover them after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from host_service.adapters.result_files import result_complete
from host_service.adapters.session_writer import SessionWriter
from host_service.domain.ports import Clock, NewId, RequestCheck, SessionStore, WorkerLauncher, WorkerSpec
from host_service.domain.sessions import Session, SessionStatus, transition
from host_service.errors import ResultNotAvailableError, SessionConflictError, SessionNotFoundError
from host_service.services.capacity import CapacityLedger
from host_service.services.checkpoint_shipper import CheckpointShipper
from host_service.services.datasets import DatasetCache
from host_service.services.handoff import ResultHandoff
from host_service.services.supervision import RunnerTimings, SessionRunner
from shared.contracts.host import StartSession

logger = logging.getLogger(__name__)


class SessionService:
    def __init__(
        self,
        *,
        store: SessionStore,
        ledger: CapacityLedger,
        datasets: DatasetCache,
        launcher: WorkerLauncher,
        handoff: ResultHandoff,
        clock: Clock,
        new_id: NewId,
        timings: RunnerTimings,
        writer: SessionWriter,
        requests: RequestCheck | None = None,
        commands_dir: Path | None = None,
        shipper: CheckpointShipper | None = None,
    ) -> None:
        self._store = store
        #: Every state change after the start, written off the event loop (in order, latest wins).
        self._writer = writer
        self._shipper = shipper
        self._requests = requests
        self._commands_dir = commands_dir
        self._ledger = ledger
        self._datasets = datasets
        self._launcher = launcher
        self._handoff = handoff
        self._clock = clock
        self._new_id = new_id
        self._timings = timings
        self._sessions: dict[str, Session] = {}
        self._runners: dict[str, SessionRunner] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session_tasks: dict[str, asyncio.Task[None]] = {}
        self._shipping: dict[str, asyncio.Task[None]] = {}
        self._lock = threading.Lock()

    def recover(self) -> None:
        """Load every session from disk; a session that was live when the host stopped has lost its
        child: it becomes completed if its result is complete on disk, else failed ``host_restarted``.
        Unacknowledged results are sent again."""
        for session in self._store.load_all():
            if not session.is_terminal:
                if result_complete(self._store.result_dir(session.session_id)):
                    session.result_available = True
                    transition(session, _via_running(session), now=self._clock())
                else:
                    error = {"code": "host_restarted", "message": "the host restarted during this training"}
                    transition(session, SessionStatus.FAILED, now=self._clock(), error=error)
                self._store.save(session)
            self._sessions[session.session_id] = session
            if session.status is SessionStatus.COMPLETED and session.result_available:
                self._spawn(self._deliver(session), f"redeliver-{session.session_id}")
        logger.info("recovered %d sessions", len(self._sessions))

    async def start(self, command: StartSession) -> tuple[Session, bool]:
        """The session for ``command`` and whether it is new. Same operation + same request while live:
        the existing session (idempotent); another request: SessionConflictError; no slot:
        CapacityExhaustedError; a request this host cannot run (a command it does not have, or whose
        params do not fit its copy): a RequestRefusedError before anything is claimed. Checking and
        claiming happen under one lock. A new session is on disk before this returns (the backend is
        told about it), its training starting meanwhile: should the write fail, the session is
        stopped and forgotten and the error raised."""
        if self._requests is not None:
            self._requests.check(command)
        fingerprint = _fingerprint(command)
        with self._lock:
            live = [
                s
                for s in self._sessions.values()
                if s.operation_id == command.operation_id and not s.is_terminal
            ]
            if live:
                if live[0].fingerprint == fingerprint:
                    return live[0], False
                raise SessionConflictError(
                    f"operation {command.operation_id} already has live session {live[0].session_id} "
                    "started with a different request; stop it first",
                    session_id=live[0].session_id,
                    operation_id=command.operation_id,
                )
            session_id = self._new_id()
            self._ledger.claim(session_id)
            now = self._clock()
            session = Session(
                session_id=session_id,
                operation_id=command.operation_id,
                fingerprint=fingerprint,
                callback_url=command.callback_url,
                request=command.request.model_dump(mode="json"),
                datasets=[d.model_dump() for d in command.datasets],
                created_at=now,
                updated_at=now,
                checkpoint_url=command.checkpoint_url,
                resume_checkpoint=resume.model_dump() if (resume := command.resume_checkpoint) else None,
            )
            self._sessions[session_id] = session
        written = self._writer.save(session)
        self._launch_runner(session)
        try:
            await asyncio.wrap_future(written)
        except BaseException:
            await self._abandon(session_id)
            raise
        logger.info("session %s started for operation %s", session_id, command.operation_id)
        return session, True

    async def _abandon(self, session_id: str) -> None:
        """A session whose start was not written: its training stopped (the child reaped), it forgotten."""
        task = self._session_tasks.get(session_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._forget(session_id)

    def get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFoundError(f"no session {session_id} on this host", session_id=session_id)
        return session

    def list(self) -> list[Session]:
        return sorted(self._sessions.values(), key=lambda s: s.created_at)

    def stop(self, session_id: str) -> Session:
        """Ask a live session to stop (no-op for a finished one); it ends ``cancelled`` shortly."""
        session = self.get(session_id)
        runner = self._runners.get(session_id)
        if runner is not None:
            runner.request_stop()
            task = self._session_tasks.get(session_id)
            if not runner.has_worker and task is not None:
                task.cancel()  # still downloading data: nothing to stop gracefully
        return session

    async def acknowledge(self, session_id: str) -> Session:
        """The backend has stored the result: delete it here (idempotent)."""
        session = self.get(session_id)
        if session.result_acknowledged:
            return session
        if session.status is not SessionStatus.COMPLETED:
            raise ResultNotAvailableError(
                f"session {session_id} is {session.status.value}; only a completed session's result "
                "can be acknowledged",
                session_id=session_id,
            )
        session.result_acknowledged = True
        session.result_available = False
        session.updated_at = self._clock()
        # The files go once the record says so: a crash in between must not leave a session that
        # recovery would send again without its result.
        await asyncio.wrap_future(self._writer.save(session))
        await asyncio.to_thread(self._store.delete_files, session_id)
        logger.info("result of session %s acknowledged and deleted", session_id)
        return session

    @property
    def handoff(self) -> ResultHandoff:
        return self._handoff

    async def shutdown(self) -> None:
        """Cancel every task; a running child is reaped (terminate, then kill) and every session state
        is on disk before this returns."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._writer.close)

    def _launch_runner(self, session: Session) -> None:
        # A training with checkpoints to ship gets a run folder: a model workload writes its training
        # checkpoints into it, a command its output, output.log and the kept copies of its own checkpoints.
        checkpoints = self._shipper.settings if self._shipper is not None else None
        spec = WorkerSpec(
            session_id=session.session_id,
            request=session.request,
            data_dir=self._store.data_dir(session.session_id),
            result_dir=self._store.result_dir(session.session_id),
            heartbeat_interval_s=self._timings.heartbeat_interval_s,
            commands_dir=self._commands_dir,
            scratch_dir=self._store.scratch_dir(session.session_id),
            run_root=self._store.run_root(session.session_id) if checkpoints is not None else None,
            checkpoint_every_epochs=checkpoints.every_epochs if checkpoints is not None else 1,
            checkpoint_min_interval_s=checkpoints.min_interval_s if checkpoints is not None else 30.0,
            resume=session.resume_checkpoint is not None,
        )
        runner = SessionRunner(
            session,
            spec,
            datasets=self._datasets,
            launcher=self._launcher,
            persist=self._writer.save,
            clock=self._clock,
            timings=self._timings,
            on_end=self._ended,
        )
        self._runners[session.session_id] = runner
        self._session_tasks[session.session_id] = self._spawn(
            self._run(runner), f"session-{session.session_id}"
        )

    async def _run(self, runner: SessionRunner) -> None:
        session_id = runner.session.session_id
        folder = runner.checkpoint_dir
        if self._shipper is not None and folder is not None:
            follow = self._shipper.follow(runner.session, folder)
            self._shipping[session_id] = self._spawn(follow, f"checkpoints-{session_id}")
        try:
            await runner.run()
        finally:
            self._release(session_id)  # (already done if the session ended; not if the host shuts down)
            self._runners.pop(session_id, None)
            self._session_tasks.pop(session_id, None)

    def _ended(self, session: Session) -> None:
        """The session reached its end (its child may still be exiting): free its slot, send its result."""
        self._release(session.session_id)
        if session.status is SessionStatus.COMPLETED:
            self._spawn(self._deliver(session), f"deliver-{session.session_id}")

    def _release(self, session_id: str) -> None:
        shipping = self._shipping.pop(session_id, None)
        if shipping is not None:
            shipping.cancel()
        self._ledger.release(session_id)

    async def _deliver(self, session: Session) -> None:
        if await self._handoff.deliver(session):
            session.callback_delivered = True
            self._writer.save(session)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _forget(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
        self._ledger.release(session_id)


def _fingerprint(command: StartSession) -> str:
    canonical = json.dumps(command.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _via_running(session: Session) -> SessionStatus:
    """A session found ``starting`` with a finished result cannot skip running; move it there first."""
    if session.status is SessionStatus.STARTING:
        transition(session, SessionStatus.RUNNING, now=session.updated_at)
    return SessionStatus.COMPLETED
