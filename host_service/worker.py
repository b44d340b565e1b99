"""Entry point of a training child process: run one session's TrainingExecutor and report to the parent.

Forked from the host's fork server (see ``adapters/worker_process.py``) ahead of time: it waits idle in
:func:`serve_one_session`, already warm, until the host hands it a session's spec, then runs that one
session and exits. It shares nothing with the API process but the pipe the spec comes through, a message
queue (child -> parent) and a cancel event (parent -> child). A watcher thread
turns the event into ``CancelToken.cancel`` (training stops at the next batch), sends heartbeats, and
exits the child if the host API process is gone (its pid is in the spec: the child's own parent is the
fork server, which outlives the host while any child runs). For a command run, ``terminate()`` (SIGTERM)
and the orphan exit first stop the program's own process group, so no process of a run outlives it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import torch

from host_service.adapters.result_files import ResultFolderSink, write_result
from host_service.domain.ports import WorkerMessage, WorkerSpec
from shared.contracts.training import ProgressUpdate, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.devices import select_device
from shared.trainkit.errors import TrainingCancelledError, TrainkitError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.workload import CheckpointPolicy
from shared.trainkit.warm_start import warm_up_training_step
from shared.trainkit.workloads.strategy.candles import validate_candle_csv

logger = logging.getLogger(__name__)

ORPHAN_EXIT_CODE = 3
#: How often an idle worker checks that the host API process is still there (its pipe closing says so
#: at once; this is the backstop).
IDLE_CHECK_S = 1.0
_WARM_UP_CANDLES = b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1.0,1.5,0.5,1.2,10\n"


def serve_one_session(
    inbox: Connection, messages: Queue[WorkerMessage], cancel: Event, threads: int, host_pid: int
) -> None:
    """An idle worker's target: warm up on the training's own thread count, wait for one session's
    spec on ``inbox``, run it (:func:`run_worker`). Returns without training when the host closes the
    pipe (it shut down, or replaced this worker) or its process is gone."""
    torch.set_num_threads(threads)
    warm_up(threads)
    while not inbox.poll(IDLE_CHECK_S):
        if not process_alive(host_pid):
            return
    try:
        spec: WorkerSpec = inbox.recv()
    except EOFError:  # the host closed the pipe: nothing to run
        return
    finally:
        inbox.close()
    run_worker(spec, messages, cancel)


def warm_up(threads: int) -> None:
    """What a training's first use pays in a fresh process, paid while idle: a training step on
    ``threads`` threads (this process is never forked from, so torch's OpenMP pool may start here),
    and one candle file parsed (pandas' CSV reader and date parsing)."""
    warm_up_training_step(threads)
    validate_candle_csv(_WARM_UP_CANDLES, "warm-up")


def run_worker(spec: WorkerSpec, messages: Queue[WorkerMessage], cancel: Event) -> None:
    """The child's target: train, then put exactly one completed / failed / cancelled message."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s worker[{spec.session_id}] %(levelname)s %(name)s: %(message)s",
    )
    forwarder = _LogForwarder(messages)
    logging.getLogger().addHandler(forwarder)
    if spec.request.get("workload") == "command":
        signal.signal(signal.SIGTERM, _unwind_on_sigterm)
    token = CancelToken()
    finished = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(spec, messages, cancel, token, finished, os.getppid()), daemon=True
    )
    watcher.start()
    try:
        outcome = _train(spec, messages, token)
    finally:
        finished.set()
    logging.getLogger().removeHandler(forwarder)
    messages.put(outcome)
    # Sent now, not on the way out: the queue's feeder thread would wait for the GIL while this process
    # tears itself down (the interpreter's 5 ms switch interval, longer on a busy machine), and the host
    # would learn of the end, and hand the result on, that much later.
    messages.close()
    messages.join_thread()


class _LogForwarder(logging.Handler):
    """Sends the training's log records (INFO and up) to the parent, which shows them to the backend
    as the session's log lines."""

    def __init__(self, messages: Queue[WorkerMessage]) -> None:
        super().__init__(level=logging.INFO)
        self._messages = messages
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            body = {"level": record.levelname, "logger": record.name, "message": self.format(record)}
            self._messages.put(WorkerMessage("log", body))
        except Exception:
            self.handleError(record)


def _train(spec: WorkerSpec, messages: Queue[WorkerMessage], token: CancelToken) -> WorkerMessage:
    def forward(update: ProgressUpdate) -> None:
        messages.put(WorkerMessage("progress", update.model_dump(mode="json")))

    try:
        request = TrainingRequest.model_validate(spec.request)
        # Reported up front so the status shows the device while training runs.
        messages.put(
            WorkerMessage("heartbeat", {"device": select_device(request.overrides.device or "auto").type})
        )
        policy = CheckpointPolicy(spec.checkpoint_every_epochs, spec.checkpoint_min_interval_s)
        executor = TrainingExecutor(
            spec.data_dir,
            ResultFolderSink(spec.result_dir),
            commands_dir=spec.commands_dir,
            scratch_dir=spec.scratch_dir,
            run_root=spec.run_root,
            checkpoints=policy if spec.run_root is not None else None,
        )
        result = executor.execute(request, forward, token, run_name=spec.session_id, resume=spec.resume)
        write_result(spec.result_dir, result.as_dict())
        return WorkerMessage("completed", {"device": result.device})
    except TrainingCancelledError as exc:
        return WorkerMessage("cancelled", {"message": exc.message})
    except TrainkitError as exc:
        return WorkerMessage(
            "failed", {"code": exc.code, "message": exc.message, "details": _plain(exc.details)}
        )
    except Exception as exc:
        logger.exception("training crashed")
        return WorkerMessage("failed", {"code": "training_error", "message": f"{type(exc).__name__}: {exc}"})


def _watch(
    spec: WorkerSpec,
    messages: Queue[WorkerMessage],
    cancel: Event,
    token: CancelToken,
    finished: threading.Event,
    parent_pid: int,
) -> None:
    """One heartbeat per interval until training ends. Once cancelled it waits on ``finished`` (the
    cancel event stays set, so waiting on it again would return at once and flood the queue: the child
    then could not exit until the parent had read every heartbeat its queue feeder still held)."""
    while not finished.is_set():
        if token.cancelled:
            finished.wait(spec.heartbeat_interval_s)
        elif cancel.wait(spec.heartbeat_interval_s):
            token.cancel("stopped on request of the backend")
        if os.getppid() != parent_pid or not process_alive(spec.host_pid):
            logger.error("host process %d is gone; stopping this orphaned training", spec.host_pid)
            if spec.request.get("workload") == "command":
                os.kill(os.getpid(), signal.SIGTERM)  # unwinds the main thread: the program's group first
                finished.wait(spec.heartbeat_interval_s * 5)
            os._exit(ORPHAN_EXIT_CODE)
        if not finished.is_set():
            # ValueError: closed just now, the outcome went out; nothing more to say.
            with contextlib.suppress(ValueError):
                messages.put(WorkerMessage("heartbeat"))


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): the signal said it exists
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"  # the state follows the parenthesised name


def _unwind_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    """A command's program runs in a process group of its own, which would outlive this child if the
    host's ``terminate()`` ended it on the spot. Raising instead unwinds the main thread through the
    supervisor, which SIGKILLs the whole group and reaps it before this process exits."""
    raise SystemExit(128 + signum)


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """Details as JSON-safe data (they cross a process boundary and land in session.json)."""
    result: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return result
