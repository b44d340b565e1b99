"""Training children: one process per session, so a crash or OOM cannot take the API down.

Children are forked from a ``forkserver`` that imported torch and the training library once, when the
host started, and each is forked *ahead of its session*: the launcher keeps one idle worker, forked and
warmed up (a training step on the training's own thread count, a candle file parsed) while nothing waits
on it, and a session's start only hands that process its spec through a pipe. The next idle worker is
forked in the background when the session asks for it (``prepare_next``: once its training is under way,
so that the fork and warm-up do not take the CPU from the training's own start). Every session still gets
a process of its own, forked from the pristine server (never from the API process, never reused), so a
child killed with SIGKILL fails that session alone and the next one runs on the next fresh worker. The
server imports modules only (no threads, no CUDA), which keeps forking from it safe; should it die,
multiprocessing starts a new one on the next launch. ``close()`` (host shutdown) ends the idle worker; an
idle worker whose host died sees its pipe close and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess, SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from host_service.domain.ports import WorkerMessage, WorkerSpec
from host_service.worker import serve_one_session
from shared.trainkit.cores import default_training_threads
from shared.trainkit.warm_start import TRAINING_MODULES

logger = logging.getLogger(__name__)

#: What the fork server imports before forking any child: everything a training imports that is slow.
WORKER_MODULES = (
    "host_service.worker",
    *TRAINING_MODULES,
    # Last: runs numba's kernel loading and torch's first training step once, before any fork.
    "host_service.adapters.worker_preload",
)
#: Forking from a server that imported torch is safe on Linux. On macOS system frameworks (Metal, which
#: MPS training uses) are not fork-safe, so children there are spawned: slower to start, never broken.
WARM_FORK = sys.platform.startswith("linux")
#: How long ``close()`` waits for the idle worker to leave on its own before killing it.
CLOSE_WAIT_S = 5.0


class ProcessWorker:
    """A running child with its message queue and cancel event."""

    def __init__(
        self, process: ForkServerProcess | SpawnProcess, messages: Queue[WorkerMessage], cancel: Event
    ) -> None:
        self._process = process
        self._messages = messages
        self._cancel = cancel

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def drain(self) -> list[WorkerMessage]:
        received = []
        while True:
            try:
                received.append(self._messages.get_nowait())
            except queue.Empty:
                return received
            except (EOFError, OSError, ValueError):  # a child killed mid-write leaves a torn message
                return received

    async def wait(self, timeout: float) -> None:
        """Wakes on the queue's pipe becoming readable or the process's sentinel (its exit): the
        session learns of a message or the end at once, not at its next poll."""
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        # The queue's receiving end is private to multiprocessing; its file descriptor is the one
        # thing read here, only to learn when to drain.
        descriptors = (self._messages._reader.fileno(), self._process.sentinel)  # type: ignore[attr-defined]
        for fd in descriptors:
            loop.add_reader(fd, woken.set)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout)
        finally:
            for fd in descriptors:
                loop.remove_reader(fd)

    def request_cancel(self) -> None:
        self._cancel.set()

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


class IdleWorker(ProcessWorker):
    """A started child waiting in :func:`serve_one_session` for the one spec it will run."""

    def __init__(
        self,
        process: ForkServerProcess | SpawnProcess,
        messages: Queue[WorkerMessage],
        cancel: Event,
        inbox: Connection,
    ) -> None:
        super().__init__(process, messages, cancel)
        self._inbox = inbox

    def assign(self, spec: WorkerSpec) -> ProcessWorker:
        """Hand ``spec`` over; raises OSError when the child is gone (its pipe is broken)."""
        try:
            self._inbox.send(spec)
        finally:
            self._inbox.close()
        return self

    def dismiss(self) -> None:
        """Close its pipe (it exits on its own), wait a little, kill it if it did not."""
        self._inbox.close()
        self._process.join(CLOSE_WAIT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(CLOSE_WAIT_S)


class ForkServerWorkerLauncher:
    """Runs each session in a child forked from a fork server with ``preload`` already imported (Linux),
    or spawned (elsewhere, see :data:`WARM_FORK`), and keeps one such child idle and warm for the next
    session (``keep_idle``). ``threads``: torch threads of a training (:func:`default_training_threads`)."""

    def __init__(
        self,
        preload: Sequence[str] = WORKER_MODULES,
        *,
        warm_fork: bool = WARM_FORK,
        threads: int | None = None,
        keep_idle: bool = True,
    ) -> None:
        self.warm_fork = warm_fork
        self.threads = threads or default_training_threads()
        self.keep_idle = keep_idle
        self._context: ForkServerContext | SpawnContext
        if warm_fork:
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(list(preload))
        else:
            self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._idle: IdleWorker | None = None
        self._forking: threading.Thread | None = None
        self._closed = False

    def warm_up(self) -> None:
        """Start the fork server (it imports ``preload``) and fork the first idle worker, in the
        background: the host answers at once, and the first training finds a warm worker waiting."""
        if self.keep_idle:
            self.prepare_next()
        elif self.warm_fork:
            forkserver.ensure_running()

    def launch(self, spec: WorkerSpec) -> ProcessWorker:
        """``spec`` runs in the idle worker (one being forked is waited for), else in a new one. The next
        idle worker is forked on ``prepare_next``."""
        worker = self._take_idle()
        if worker is not None:
            try:
                return worker.assign(spec)
            except OSError:  # it died while idle: its successor below is as warm, just not forked yet
                logger.warning("the idle training worker %s was gone; forking another", worker.pid)
        return self._start().assign(spec)

    def prepare_next(self) -> None:
        """Fork the next idle worker in the background, unless one is idle or being forked already."""
        if not self.keep_idle:
            return
        with self._lock:
            if self._closed or self._idle is not None or self._forking is not None:
                return
            self._forking = threading.Thread(target=self._fork_idle, name="idle-worker-fork", daemon=True)
            self._forking.start()

    @property
    def idle_pid(self) -> int | None:
        """The idle worker's pid (None while there is none): what the next session will run in."""
        with self._lock:
            return self._idle.pid if self._idle is not None else None

    def close(self) -> None:
        """End the idle worker and fork no other (host shutdown). Running sessions are not touched."""
        with self._lock:
            self._closed = True
            forking = self._forking
        if forking is not None:
            forking.join()  # a worker it forked after the close is dismissed by the thread itself
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None:
            idle.dismiss()

    def _take_idle(self) -> IdleWorker | None:
        with self._lock:
            forking = self._forking
        if forking is not None:
            forking.join()  # nearly done (a fork takes milliseconds): sooner than forking another
        with self._lock:
            worker, self._idle = self._idle, None
        return worker if worker is not None and worker.is_alive() else None

    def _fork_idle(self) -> None:
        try:
            worker = self._start()
        except Exception:
            logger.exception("forking an idle training worker failed; the next session forks its own")
            worker = None
        with self._lock:
            self._forking = None
            if worker is not None and not self._closed:
                self._idle, worker = worker, None
        if worker is not None:  # closed meanwhile
            worker.dismiss()

    def _start(self) -> IdleWorker:
        messages: Queue[WorkerMessage] = self._context.Queue()
        cancel = self._context.Event()
        inbox, outbox = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=serve_one_session,
            args=(inbox, messages, cancel, self.threads, os.getpid()),
            name="modelyard-training-worker",
            daemon=True,  # never outlive the host API process
        )
        process.start()
        inbox.close()  # the child's end: only the child may hold it, so the host's exit closes the pipe
        return IdleWorker(process, messages, cancel, outbox)
