"""Training children: one ``spawn``-ed process per session, so a crash or OOM cannot take the API down."""

from __future__ import annotations

import multiprocessing
import queue
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from host_service.domain.ports import WorkerMessage, WorkerSpec
from host_service.worker import run_worker


class ProcessWorker:
    """A running child with its message queue and cancel event."""

    def __init__(self, process: SpawnProcess, messages: Queue[WorkerMessage], cancel: Event) -> None:
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

    def request_cancel(self) -> None:
        self._cancel.set()

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


class SpawnWorkerLauncher:
    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")

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
