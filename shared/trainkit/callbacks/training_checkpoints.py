"""Resumable training checkpoints: every ``every_n_epochs`` epochs, at most once per ``min_interval_s``
(counted from the fit's start), written atomically, the last ``keep_last`` kept. A fit resumes from them
with ``Trainer.fit(..., resume_from=dirpath)`` (see :mod:`shared.trainkit.resume`).

The epoch's state is serialized on the training thread (so it is exactly the state at the end of that
epoch), and the file is written, fsynced and the old ones pruned on a writer thread while the next
epoch trains: the fsync alone cost a small model's fit about 1 % (``benchmarks/trainer_overhead.py``).
At most one write is in flight (the next epoch's end waits for it, so the decisions are those of a
synchronous write), and the fit's end, failure or cancel waits for it, so a fit never returns with a
checkpoint half-written."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.trainkit.checkpoint import checkpoint_bytes, model_class_name, write_checkpoint_bytes
from shared.trainkit.config import FitResult
from shared.trainkit.errors import CheckpointError, ConfigError
from shared.trainkit.resume import checkpoint_name, training_checkpoints
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer

logger = logging.getLogger(__name__)


class TrainingCheckpoints(Callback):
    """Writes ``epoch-NNNNNN.ckpt`` into ``dirpath`` after the other callbacks of the epoch ran (their
    states are those of the finished epoch). A failed write (disk full) is a warning: training goes on
    with the checkpoints it has. ``saved`` lists the epochs written by this fit."""

    runs_last = True

    def __init__(
        self,
        dirpath: Path | str,
        *,
        every_n_epochs: int = 1,
        min_interval_s: float = 30.0,
        keep_last: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ConfigError(
                f"checkpoint_every_epochs must be a whole number >= 1, got {every_n_epochs!r}",
                field="checkpoint_every_epochs",
            )
        if min_interval_s < 0:
            raise ConfigError(
                f"checkpoint_min_interval_s must be >= 0, got {min_interval_s!r}",
                field="checkpoint_min_interval_s",
            )
        if keep_last < 1:
            raise ConfigError(f"keep_last must be >= 1, got {keep_last!r}", field="keep_last")
        self.dirpath = Path(dirpath)
        self.every_n_epochs, self.min_interval_s, self.keep_last = every_n_epochs, min_interval_s, keep_last
        self.saved: list[int] = []
        self._clock = clock
        self._last_saved_at: float | None = None
        self._writing: threading.Thread | None = None
        self._failure: Exception | None = None

    @property
    def state_key(self) -> str:
        return "TrainingCheckpoints"

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        # The interval counts from the fit's start: a fit shorter than it writes none (a fault then
        # costs less than the interval), so a short training pays nothing for being resumable.
        self.saved, self._last_saved_at = [], self._clock()

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        self.wait()  # the previous write's outcome decides whether this epoch is due
        if metrics.epoch % self.every_n_epochs:
            return
        now = self._clock()
        if self._last_saved_at is not None and now - self._last_saved_at < self.min_interval_s:
            return
        data = checkpoint_bytes(
            module.state_dict(),
            model_class=model_class_name(module),
            config=trainer.config.as_dict(),
            extra=trainer.checkpoint_extra(module),
        )
        self._last_saved_at = now
        self._writing = threading.Thread(
            target=self._write,
            args=(trainer, metrics.epoch, data),
            name=f"checkpoint-writer:{self.dirpath.name}",
            daemon=True,
        )
        self._writing.start()

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        self.wait()

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        self.wait()

    def wait(self) -> None:
        """Block until the checkpoint being written (if any) is on disk, or its write failed; an
        unexpected error of the write is raised here, in the training thread, as a synchronous write's."""
        if self._writing is not None:
            self._writing.join()
            self._writing = None
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _write(self, trainer: Trainer, epoch: int, data: bytes) -> None:
        try:
            write_checkpoint_bytes(self.dirpath / checkpoint_name(epoch), data)
        except Exception as exc:
            if not isinstance(exc, CheckpointError):  # a bug, not a full disk: the fit fails on it
                self._failure = exc
                return
            message = f"epoch {epoch}: training checkpoint not written ({exc.message}); training goes on"
            logger.warning(message)
            trainer.warnings.append(message)
            self._last_saved_at = None  # try again at the next epoch due, as if none was written
            return
        self.saved.append(epoch)
        self._prune()

    def _prune(self) -> None:
        for old in training_checkpoints(self.dirpath)[self.keep_last :]:
            try:
                old.unlink()
            except OSError as exc:
                logger.warning("old checkpoint %s not removed: %s", old, exc)

    def state_dict(self) -> dict[str, Any]:
        self.wait()  # another checkpoint taken this epoch records this one's outcome, as if it were synchronous
        return {"saved": list(self.saved)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved = [int(epoch) for epoch in state.get("saved", [])]
