"""Progress reports for a listener (the executor, a CLI bar) that can neither break nor slow training.

Design: the training thread only *posts* a :class:`TrainingProgress` into a small mailbox and goes
on; one daemon thread hands them to the listener in order. Consecutive batch reports still waiting
are coalesced (the newest replaces the older one: progress is a state, an intermediate value is worth
nothing once a newer one exists), while epoch, start and end reports are always kept. So a slow
listener sees fewer batch reports, never blocks the loop and never sees ``fraction`` go backwards. A
listener exception is logged (with its traceback, once; then counted) and delivery goes on. At the end
of a fit the reporter waits up to ``flush_timeout_s`` for the listener to receive the last report.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.trainkit.config import FitResult
from shared.trainkit.errors import ConfigError, TrainingCancelledError
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule, TrainStepOutput

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer

logger = logging.getLogger(__name__)

BATCH_PHASE = "training"


@dataclass(frozen=True)
class TrainingProgress:
    """One report. ``fraction`` (0..1) covers the whole fit and never decreases within it. ``epoch`` is
    the epoch in progress or about to start, from 1; ``batch`` counts the epoch's batches done."""

    phase: str
    message: str
    fraction: float
    epoch: int
    total_epochs: int
    batch: int | None = None
    total_batches: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


ProgressListener = Callable[[TrainingProgress], None]


class ProgressDelivery:
    """The mailbox and its delivery thread (``threaded=False`` delivers inline, for simple callers)."""

    def __init__(self, listener: ProgressListener, *, threaded: bool = True, max_pending: int = 64) -> None:
        self.listener = listener
        self.max_pending = max_pending
        self.posted = self.delivered = self.coalesced = self.dropped = self.failures = 0
        self._items: deque[TrainingProgress] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="progress-delivery", daemon=True)
            self._thread.start()

    def post(self, progress: TrainingProgress) -> None:
        self.posted += 1
        if self._thread is None:
            self._deliver(progress)
            return
        with self._cond:
            if progress.phase == BATCH_PHASE and self._items and self._items[-1].phase == BATCH_PHASE:
                self._items[-1] = progress
                self.coalesced += 1
            else:
                self._items.append(progress)
                if len(self._items) > self.max_pending:
                    self._items.popleft()
                    self.dropped += 1
            self._cond.notify()

    def close(self, timeout_s: float) -> bool:
        """Deliver what is pending, then stop; False when the listener did not finish in time."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                progress = self._items.popleft()
            self._deliver(progress)

    def _deliver(self, progress: TrainingProgress) -> None:
        try:
            self.listener(progress)
            self.delivered += 1
        except Exception:
            self.failures += 1
            if self.failures == 1:
                logger.exception("progress listener failed; training goes on (further failures are counted)")


class ProgressReporter(Callback):
    """Reports every ``every_n_batches`` training batches, after every epoch, and at start and end.

    ``min_interval_s`` also spaces batch reports in time (an epoch's last batch is always reported):
    each report wakes the delivery thread, which then contends for the GIL with the training loop, and
    on small models ten batches take a few milliseconds, far more often than anyone reads progress.
    """

    def __init__(
        self,
        listener: ProgressListener,
        every_n_batches: int = 10,
        *,
        threaded: bool = True,
        flush_timeout_s: float = 2.0,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(every_n_batches, bool) or not isinstance(every_n_batches, int) or every_n_batches < 1:
            raise ConfigError(
                f"ProgressReporter: every_n_batches must be >= 1, got {every_n_batches!r}",
                field="every_n_batches",
            )
        self.listener = listener
        self.every_n_batches = every_n_batches
        self.threaded = threaded
        self.flush_timeout_s = flush_timeout_s
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.delivery: ProgressDelivery | None = None
        self._fraction = 0.0
        self._last_batch_report = -math.inf

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self.delivery = ProgressDelivery(self.listener, threaded=self.threaded)
        self._fraction = 0.0
        self._last_batch_report = -math.inf
        self._post(trainer, "started", f"training on {trainer.device}", 0.0)

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainableModule, output: TrainStepOutput, batch_idx: int
    ) -> None:
        total = trainer.total_batches
        done = batch_idx + 1
        if done % self.every_n_batches and done != total:
            return
        if self.min_interval_s and done != total:
            now = self.clock()
            if now - self._last_batch_report < self.min_interval_s:
                return
            self._last_batch_report = now
        epoch, epochs = trainer.current_epoch, trainer.config.max_epochs
        within = done / total if total else 0.0
        of_total = f"/{total}" if total else ""
        loss = float(output.loss.detach().item())  # one sync per report, not per batch
        message = f"epoch {epoch}/{epochs}, batch {done}{of_total}, loss {loss:.4g}"
        self._post(
            trainer, BATCH_PHASE, message, (epoch - 1 + within) / epochs, batch=done, metrics={"loss": loss}
        )

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        values = {k: float(v) for k, v in metrics.as_dict().items() if v is not None and k != "epoch"}
        shown = ", ".join(
            f"{k} {values[k]:.4g}" for k in ("train_loss", "val_loss", "val_accuracy") if k in values
        )
        message = f"epoch {metrics.epoch}/{trainer.config.max_epochs} done: {shown}"
        self._post(trainer, "epoch_end", message, metrics.epoch / trainer.config.max_epochs, metrics=values)

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        message = f"training finished after {result.epochs_trained} epochs ({result.stop_reason})"
        self._post(trainer, "completed", message, 1.0)
        self.close()

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        phase = "cancelled" if isinstance(error, TrainingCancelledError) else "failed"
        self._post(trainer, phase, str(error), self._fraction)
        self.close()

    def close(self) -> None:
        """Flush pending reports with a deadline; never waits longer than ``flush_timeout_s``."""
        if self.delivery is not None and not self.delivery.close(self.flush_timeout_s):
            logger.warning(
                "progress listener still busy after %.1fs; not waiting for it", self.flush_timeout_s
            )

    def _post(
        self,
        trainer: Trainer,
        phase: str,
        message: str,
        fraction: float,
        *,
        batch: int | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        if self.delivery is None:
            return
        self._fraction = max(self._fraction, min(1.0, fraction if math.isfinite(fraction) else 0.0))
        progress = TrainingProgress(
            phase=phase,
            message=message,
            fraction=self._fraction,
            epoch=max(trainer.current_epoch, 1),  # the "started" report announces epoch 1
            total_epochs=trainer.config.max_epochs,
            batch=batch,
            total_batches=trainer.total_batches,
            metrics=metrics or {},
        )
        self.delivery.post(progress)
