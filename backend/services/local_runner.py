"""LocalTrainingRunner: runs accepted operations in-process, on a bounded pool of worker threads.

At most ``concurrency`` trainings run at once; the rest wait as ``pending`` in FIFO order. Training is
synchronous and CPU-bound, so it runs on its own thread pool, never the one that serves API reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backend.domain.attempts import resumes_from_checkpoint
from backend.domain.operations import INTERRUPTED, Operation, OperationError
from backend.domain.ports import TrainingEngine
from backend.errors import IllegalTransitionError
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.progress import retrying_message
from shared.contracts.training import ProgressUpdate, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import TrainingCancelledError, TrainkitError

logger = logging.getLogger(__name__)


def json_safe(details: dict[str, Any]) -> dict[str, Any]:
    """Error details as stored JSON: paths and other objects become strings."""
    return dict(json.loads(json.dumps(details, default=str)))


class LocalTrainingRunner:
    def __init__(
        self, engine: TrainingEngine, operations: OperationsService, logs: LogCapture, *, concurrency: int = 1
    ) -> None:
        self._engine = engine
        self._ops = operations
        self._logs = logs
        self._concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="training")
        self._tokens: dict[str, CancelToken] = {}
        self._tokens_lock = threading.Lock()
        self._queue: asyncio.Queue[str | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._work(), name=f"local-runner-{i}") for i in range(self._concurrency)
        ]

    def submit(self, op_id: str) -> None:
        """Queue a pending operation. Safe to call from any thread."""
        if self._loop is None or self._queue is None:
            raise RuntimeError("LocalTrainingRunner.start() was not awaited")
        self._loop.call_soon_threadsafe(self._queue.put_nowait, op_id)

    def cancel(self, op_id: str, reason: str = "cancelled by user") -> bool:
        with self._tokens_lock:
            token = self._tokens.get(op_id)
        if token is None:
            return False
        token.cancel(reason)
        return True

    def stop_if_changed_elsewhere(self, op_id: str) -> None:
        """Another backend cancelled or took over an operation this runner trains: stop training it
        (a cancel ends it ``cancelled``; a takeover keeps the other backend's outcome)."""
        if self.cancel(op_id, "the operation was cancelled or taken over through another backend"):
            logger.warning("operation %s was changed through another backend; stopping its training", op_id)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue else 0

    @property
    def running(self) -> int:
        with self._tokens_lock:
            return len(self._tokens)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking work, ask running trainings to stop, wait up to ``timeout_s`` for them."""
        self._stopping = True
        with self._tokens_lock:
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel("backend shutting down")
        if self._queue is not None:
            for _ in self._workers:
                self._queue.put_nowait(None)
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=timeout_s)
            for task in late:
                task.cancel()
            if late:
                logger.warning("%d training(s) did not stop within %.0f s of shutdown", len(late), timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _work(self) -> None:
        if self._queue is None or self._loop is None:
            raise RuntimeError("LocalTrainingRunner.start() was not awaited")
        while True:
            op_id = await self._queue.get()
            if op_id is None or self._stopping:
                return
            try:
                await self._loop.run_in_executor(self._pool, self._run, op_id)
            except Exception:
                logger.exception("local runner failed on operation %s", op_id)

    def _run(self, op_id: str) -> None:
        """Claim the operation and train it; runs on a training thread.

        The cancel token is registered before the claim publishes ``running``: a cancel that arrives
        the moment the operation shows as running must find it."""
        token = CancelToken()
        with self._tokens_lock:
            self._tokens[op_id] = token
        try:
            op = None if self._stopping else self._ops.mark_running(op_id)
            if op is None:  # cancelled (or taken) while it waited in the queue
                return
            with self._logs.capture(op_id):
                self._train(op, token)
        finally:
            with self._tokens_lock:
                self._tokens.pop(op_id, None)

    def _train(self, op: Operation, token: CancelToken) -> None:
        resume = resumes_from_checkpoint(op)
        attempt = op.attempt_log[-1] if op.attempt_log else None
        if attempt is not None and attempt.number > 1:
            start = "from its last checkpoint" if resume else "from scratch"
            logger.info("operation %s: attempt %d on %s, %s", op.id, attempt.number, attempt.where, start)
        else:
            logger.info("operation %s started on the local runner", op.id)
        try:
            request = TrainingRequest.model_validate(op.request)
            result = self._engine.execute(
                request, self._progress_to(op.id), token, run_name=op.id, resume=resume
            )
        except TrainingCancelledError as exc:
            if self._stopping:
                self._finish_failed(
                    op.id, OperationError(INTERRUPTED, "the backend shut down during training")
                )
            else:
                logger.info("operation %s cancelled: %s", op.id, exc.message)
                self._finish(op.id, "cancelled", lambda: self._ops.mark_cancelled(op.id))
        except TrainkitError as exc:
            logger.warning("operation %s failed: %s", op.id, exc.message)
            device = exc.details.get("device")
            self._finish_failed(
                op.id,
                OperationError(exc.code, exc.message, json_safe(exc.details)),
                device=device if isinstance(device, str) else None,
            )
        except Exception as exc:
            logger.exception("operation %s crashed", op.id)
            self._finish_failed(op.id, OperationError("internal_error", f"{type(exc).__name__}: {exc}"))
        else:
            stored = result.model.as_dict() if result.model is not None else "none stored"
            logger.info("operation %s completed: model %s", op.id, stored)
            self._finish(
                op.id, "completed", lambda: self._ops.complete(op.id, result.as_dict(), device=result.device)
            )

    def _finish_failed(self, op_id: str, error: OperationError, *, device: str | None = None) -> None:
        self._finish(op_id, "failed", lambda: self._ops.fail(op_id, error, device=device))

    def _finish(self, op_id: str, outcome: str, record: Callable[[], object]) -> None:
        """Record the end of a run; an operation another backend took over meanwhile keeps its state."""
        try:
            record()
        except IllegalTransitionError as exc:
            logger.warning(
                "operation %s ended %s here, but it is no longer this backend's (%s); its state stays",
                op_id,
                outcome,
                exc.message,
            )
        except Exception:
            logger.exception("could not record that operation %s %s", op_id, outcome)

    def _progress_to(self, op_id: str) -> Any:
        def report(update: ProgressUpdate) -> None:
            resumed = update.extra.get("resumed_from_epoch")
            if isinstance(resumed, int):
                where = f"local backend {self._ops.instance_id}"
                logger.info("operation %s: %s", op_id, retrying_message(resumed, where))
            # Progress is fire-and-forget: a reporting problem must never kill the training.
            try:
                self._ops.report_progress(op_id, update)
            except Exception:
                logger.exception("progress update of %s was lost", op_id)

        return report
