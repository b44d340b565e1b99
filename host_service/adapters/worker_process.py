"""Training children: one process per session, so a crash or OOM cannot take the API down.

Children are forked from a ``forkserver`` that imported torch and the training library once, when the
host started: a child starts in milliseconds instead of the seconds a ``spawn``-ed one spends importing
torch. Every session still gets a process of its own, forked from the pristine server (never from the
API process, never reused), so a child killed with SIGKILL fails that session alone and the next one
forks from the same warm server. The server imports modules only (no threads, no CUDA), which keeps
forking from it safe; should it die, multiprocessing starts a new one on the next launch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import sys
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext, ForkServerProcess, SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from host_service.domain.ports import WorkerMessage, WorkerSpec
from host_service.worker import run_worker
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


class ForkServerWorkerLauncher:
    """Launches each session's child from a fork server with ``preload`` already imported (Linux), or
    spawns it (elsewhere, see :data:`WARM_FORK`)."""

    def __init__(self, preload: Sequence[str] = WORKER_MODULES, *, warm_fork: bool = WARM_FORK) -> None:
        self.warm_fork = warm_fork
        self._context: ForkServerContext | SpawnContext
        if warm_fork:
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(list(preload))
        else:
            self._context = multiprocessing.get_context("spawn")

    def warm_up(self) -> None:
        """Start the fork server now (it imports ``preload`` in the background), not at the first launch."""
        if self.warm_fork:
            forkserver.ensure_running()

    def launch(self, spec: WorkerSpec) -> ProcessWorker:
        messages: Queue[WorkerMessage] = self._context.Queue()
        cancel = self._context.Event()
        process = self._context.Process(
            target=run_worker,
            args=(spec, messages, cancel),
            name=f"modelyard-session-{spec.session_id}",
            daemon=True,  # never outlive the host API process
        )
        process.start()
        return ProcessWorker(process, messages, cancel)
