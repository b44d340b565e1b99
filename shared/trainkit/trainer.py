"""The engine: :class:`Trainer` runs a :class:`TrainableModule` over a :class:`DataModule`.

Hook order of one fit (asserted by ``tests/trainkit/test_trainer_hooks.py``)::

    on_fit_start
    per epoch:  on_train_epoch_start
                on_train_batch_end            (once per training batch)
                on_validation_end             (only when the data module has validation batches)
                on_train_epoch_end            (a stop requested here ends the fit after this epoch)
    on_fit_end                                (fit completed)  |  on_exception  (fit is about to raise)

Within one hook, callbacks run in the order given, except that :class:`ModelCheckpoint` instances run
last so the states they save include the other callbacks' updates of the same epoch.

``fit(..., resume_from=...)`` continues a fit from a training checkpoint (see
:mod:`~shared.trainkit.resume`): weights, optimizer, GradScaler, counters, history, decisions, every
callback's state and the random states (global, the fit's generator, the train loader's shuffling) are
restored after seeding and before ``on_fit_start``, so the resumed fit is the one that never stopped.

Epochs are numbered from 1 everywhere (``current_epoch``, ``EpochMetrics.epoch``, decisions, errors,
checkpoints, the run record); ``current_epoch`` is 0 before the first epoch starts. Batches are indexed
from 0 (``batch_idx``), as Python indexes them.

The hot loop stays lean (see :mod:`~shared.trainkit.loss_tracking` for when losses are read), and
callbacks that do not override a hook cost nothing on that hook. Randomness is scoped to the fit (see
:mod:`~shared.trainkit.seeding` for what still is process-wide).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from shared.trainkit.cancellation import CancelToken
from shared.trainkit.checkpoint import Checkpoint, config_hash, model_class_name
from shared.trainkit.config import FitResult, StopReason, TrainerConfig
from shared.trainkit.decisions import analyze
from shared.trainkit.devices import move_to_device, resolve_precision, select_device
from shared.trainkit.errors import DataError
from shared.trainkit.gradient_steps import GradientSteps
from shared.trainkit.loss_tracking import LossTracker, diverged, prefixed
from shared.trainkit.resume import (
    ResumePoint,
    StatefulLoader,
    capture_random_state,
    find_resume_point,
    restore_random_state,
)
from shared.trainkit.seeding import attach_generator, deterministic_kernels, scoped_seed
from shared.trainkit.spi import Batch, Callback, DataModule, EpochMetrics, Stage, TrainableModule

logger = logging.getLogger(__name__)

HOOKS: tuple[str, ...] = tuple(name for name in vars(Callback) if name.startswith("on_"))
_STOP_DECISIONS = {
    StopReason.EARLY_STOPPING: "early_stop",
    StopReason.TIME_LIMIT: "time_limit",
    StopReason.MAX_EPOCHS: "stop",
}


class Trainer:
    """Fits a module; callbacks read ``config``, ``device``, ``optimizer``, ``current_epoch``,
    ``history``, ``decisions``, ``total_batches``, ``learning_rate`` and ``generator`` (the fit's
    seeded :class:`torch.Generator`), and may ``request_stop``."""

    def __init__(
        self, config: TrainerConfig, callbacks: Sequence[Callback] = (), cancel: CancelToken | None = None
    ) -> None:
        self.config = config
        self.callbacks: list[Callback] = sorted(callbacks, key=lambda cb: getattr(cb, "runs_last", False))
        self.cancel = cancel
        self.device = torch.device("cpu")
        self.precision: str = config.precision
        self.optimizer: torch.optim.Optimizer | None = None
        self.generator: torch.Generator | None = None
        self.current_epoch = 0
        #: The epoch the fit resumed after (0: it started from scratch).
        self.resumed_from_epoch = 0
        self.total_batches: int | None = None
        self.history: list[EpochMetrics] = []
        self.decisions: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.artifacts: dict[str, str] = {}
        self._stop: tuple[StopReason, str] | None = None
        self._hooks: dict[str, list[Callable[..., None]]] = {}
        self._steps: GradientSteps | None = None
        self._train_loader: Iterable[Batch] | None = None

    @property
    def learning_rate(self) -> float:
        if self.optimizer is None:
            return self.config.learning_rate
        return float(self.optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self.optimizer is None:
            raise RuntimeError("the learning rate can only be set while fit() runs")
        for group in self.optimizer.param_groups:
            group["lr"] = value

    @property
    def global_step(self) -> int:
        """Optimizer steps taken in this fit (those before a resume included)."""
        return 0 if self._steps is None else self._steps.steps_taken

    @property
    def stop_reason(self) -> StopReason | None:
        return None if self._stop is None else self._stop[0]

    def request_stop(self, reason: StopReason, message: str) -> None:
        """Ask the fit to stop after the current batch's epoch; the first request wins."""
        if self._stop is None:
            self._stop = (reason, message)
            self.record_decision(_STOP_DECISIONS[reason], message)

    def record_decision(self, kind: str, message: str, **details: Any) -> None:
        """Note a training decision (shown on the dashboard) for the current epoch (from 1)."""
        self.decisions.append({"epoch": self.current_epoch, "kind": kind, "message": message, **details})
        logger.info("epoch %d: %s", self.current_epoch, message)

    def register_artifact(self, path: str, kind: str) -> None:
        """Note a file this fit produced (a run recorder lists it with size and hash)."""
        self.artifacts[str(path)] = kind

    def checkpoint_extra(self, module: TrainableModule) -> dict[str, Any]:
        """What a checkpoint carries beside the weights; calls every ``on_save_checkpoint``."""
        extra: dict[str, Any] = {
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "history": [m.as_dict() for m in self.history],
            "decisions": [dict(d) for d in self.decisions],
            "stop": None if self._stop is None else [str(self._stop[0]), self._stop[1]],
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "random": capture_random_state(self.generator),
        }
        if self.optimizer is not None:
            extra["optimizer"] = self.optimizer.state_dict()
        if self._steps is not None and self._steps.scaler is not None:
            extra["grad_scaler"] = self._steps.scaler.state_dict()
        if isinstance(self._train_loader, StatefulLoader):
            extra["train_loader"] = self._train_loader.state_dict()
        for callback in self.callbacks:
            callback.on_save_checkpoint(self, module, extra)
        return extra

    def restore_callback_states(self, module: TrainableModule, extra: dict[str, Any]) -> None:
        """Give each callback its state from a checkpoint's ``extra`` and call ``on_load_checkpoint``."""
        states = extra.get("callbacks", {})
        for callback in self.callbacks:
            if callback.state_key in states:
                callback.load_state_dict(states[callback.state_key])
            callback.on_load_checkpoint(self, module, extra)

    def fit(
        self, module: TrainableModule, data: DataModule, *, resume_from: Path | str | None = None
    ) -> FitResult:
        """Train for up to ``config.max_epochs``; raises the trainkit errors after ``on_exception``.

        ``resume_from`` (a training checkpoint, or a folder of them) continues from the newest valid
        one; invalid ones are skipped, and with none valid the fit starts from scratch, saying so in
        ``warnings`` and ``decisions``."""
        self._reset()
        started = time.perf_counter()
        try:
            self.device = select_device(self.config.device)
            with (
                deterministic_kernels(self.config.deterministic),
                scoped_seed(self.config.seed, self.device) as generator,
            ):
                self.generator = generator
                attach_generator(module, generator)
                try:
                    return self._fit(module, data, started, resume_from)
                finally:
                    attach_generator(module, None)
        except BaseException as error:
            self._notify_exception(module, error)
            raise

    def _reset(self) -> None:
        self.history, self.decisions, self.warnings, self.artifacts = [], [], [], {}
        self.current_epoch, self.total_batches, self._stop = 0, None, None
        self.resumed_from_epoch, self._steps, self._train_loader = 0, None, None
        self._hooks = {name: _overridden(self.callbacks, name) for name in HOOKS}

    def _fit(
        self, module: TrainableModule, data: DataModule, started: float, resume_from: Path | str | None
    ) -> FitResult:
        self.precision, warning = resolve_precision(self.config.precision, self.device.type)
        if warning is not None:
            self.warnings.append(warning)
            logger.warning(warning)
        module.to(self.device)
        data.setup(Stage.FIT)
        train_loader = data.train_dataloader(self.config.batch_size)
        val_loader = data.val_dataloader(self.config.batch_size)
        self.optimizer = module.configure_optimizers(self.config.learning_rate)
        steps = GradientSteps(self.optimizer, self.config, self.device, self.precision)
        self._steps, self._train_loader = steps, train_loader
        if resume_from is not None:
            self._resume(module, Path(resume_from))
        self._call("on_fit_start", module)
        for epoch in range(self.resumed_from_epoch + 1, self.config.max_epochs + 1):
            if self._stop is not None:  # a checkpoint of the epoch that asked to stop
                break
            self.current_epoch = epoch
            metrics = self._run_epoch(module, steps, train_loader, val_loader)
            self.history.append(metrics)
            self._call("on_train_epoch_end", module, metrics)
            if self._stop is not None:
                break
        result = self._result(time.perf_counter() - started)
        self._call("on_fit_end", module, result)
        return result

    def _resume(self, module: TrainableModule, source: Path) -> None:
        point = find_resume_point(
            source, model_class=model_class_name(module), config_hash=config_hash(self.config.as_dict())
        )
        pristine = _snapshot(module, self.optimizer)
        if point.checkpoint is not None:
            try:
                self._restore(module, point.checkpoint, point.epoch)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                point.rejected.append(f"checkpoint {point.path} does not fit this fit: {exc}")
                _put_back(module, self.optimizer, pristine)
                self.history, self.decisions, self.current_epoch, self.resumed_from_epoch = [], [], 0, 0
                point = ResumePoint(checkpoint=None, path=None, rejected=point.rejected)
        for reason in point.rejected:
            self.warnings.append(reason)
        if point.checkpoint is None:
            why = "; ".join(point.rejected) or f"no training checkpoint in {source}"
            self.record_decision("resume", f"starting from scratch: {why}")
            return
        skipped = (
            f" (skipped {len(point.rejected)} invalid: {'; '.join(point.rejected)})" if point.rejected else ""
        )
        self.record_decision(
            "resume",
            f"resumed from epoch {point.epoch} ({point.path}){skipped}",
            checkpoint=str(point.path),
            resumed_from_epoch=point.epoch,
        )

    def _restore(self, module: TrainableModule, checkpoint: Checkpoint, epoch: int) -> None:
        optimizer, steps, extra = self.optimizer, self._steps, checkpoint.extra
        if optimizer is None or steps is None:
            raise RuntimeError("a checkpoint is restored only once fit() built the optimizer")
        module.load_state_dict(checkpoint.state_dict)
        optimizer.load_state_dict(extra["optimizer"])
        if steps.scaler is not None and "grad_scaler" in extra:
            steps.scaler.load_state_dict(extra["grad_scaler"])
        steps.steps_taken = int(extra["global_step"])
        self.history = [EpochMetrics.from_dict(row) for row in extra["history"]]
        self.decisions = [dict(d) for d in extra.get("decisions", [])]
        stop = extra.get("stop")
        self._stop = None if stop is None else (StopReason(stop[0]), str(stop[1]))
        self.current_epoch = self.resumed_from_epoch = epoch
        self.restore_callback_states(module, extra)
        if isinstance(self._train_loader, StatefulLoader) and "train_loader" in extra:
            self._train_loader.load_state_dict(extra["train_loader"])
        restore_random_state(extra["random"], self.generator)

    def _run_epoch(
        self,
        module: TrainableModule,
        steps: GradientSteps,
        train: Iterable[Batch],
        val: Iterable[Batch] | None,
    ) -> EpochMetrics:
        started = time.perf_counter()
        learning_rate = self.learning_rate
        self.total_batches = _length(train)
        self._call("on_train_epoch_start", module, self.current_epoch)
        train_loss, metrics = self._train_batches(module, steps, train)
        val_loss: float | None = None
        if val is not None:
            val_loss, val_metrics = self._validate(module, steps, val)
            metrics.update(val_metrics)
            self._call("on_validation_end", module, val_loss)
        duration = time.perf_counter() - started
        return EpochMetrics(self.current_epoch, train_loss, val_loss, learning_rate, duration, metrics)

    def _train_batches(
        self, module: TrainableModule, steps: GradientSteps, loader: Iterable[Batch]
    ) -> tuple[float, dict[str, float]]:
        module.train()
        tracker = LossTracker(self.current_epoch, sync_every=1 if self.device.type == "cpu" else None)
        batch_end = self._hooks["on_train_batch_end"]
        cancel, move = self.cancel, self.device.type != "cpu"
        batch_idx = -1
        for batch_idx, batch in enumerate(loader):
            if cancel is not None and cancel.cancelled:
                cancel.raise_if_cancelled(f"epoch {self.current_epoch}, before training batch {batch_idx}")
            if self._stop is not None:
                break
            batch = move_to_device(batch, self.device, True) if move else batch
            output = steps.forward(module.training_step, batch, batch_idx)
            tracker.add(output, batch_idx)
            steps.backward(output.loss, batch_idx, self.total_batches)
            for hook in batch_end:
                hook(self, module, output, batch_idx)
        if batch_idx < 0:
            raise DataError(
                f"train_dataloader yielded no batches in epoch {self.current_epoch}; check that the training "
                f"split is not empty and batch_size ({self.config.batch_size}) fits it",
                field="batch_size",
            )
        steps.flush()
        return tracker.result()

    def _validate(
        self, module: TrainableModule, steps: GradientSteps, loader: Iterable[Batch]
    ) -> tuple[float, dict[str, float]]:
        module.eval()
        loss_sum, size, correct, counted = torch.zeros((), device=self.device), 0, 0, False
        extra: dict[str, float] = {}
        cancel, move = self.cancel, self.device.type != "cpu"
        with torch.no_grad():
            for batch_idx, batch in enumerate(loader):
                if cancel is not None and cancel.cancelled:
                    cancel.raise_if_cancelled(f"epoch {self.current_epoch}, validation batch {batch_idx}")
                batch = move_to_device(batch, self.device, True) if move else batch
                output = steps.forward(module.validation_step, batch, batch_idx)
                loss_sum += output.loss.detach().float() * output.size
                size += output.size
                if output.correct is not None:
                    correct, counted = correct + int(output.correct), True
                for key, value in output.metrics.items():
                    extra[key] = extra.get(key, 0.0) + float(value) * output.size
        if size == 0:
            raise DataError(
                "val_dataloader yielded no samples; return None from val_dataloader to skip validation"
            )
        val_loss = float(loss_sum.item()) / size
        if not math.isfinite(val_loss):
            raise diverged(self.current_epoch, None, val_loss, "validation")
        metrics = {prefixed("val_", key): total / size for key, total in extra.items()}
        if counted:
            metrics["val_accuracy"] = correct / size
        return val_loss, metrics

    def _result(self, duration: float) -> FitResult:
        analysis = analyze([m.as_dict() for m in self.history])
        return FitResult(
            epochs_trained=len(self.history),
            best_val_loss=analysis.best_val_loss,
            best_epoch=analysis.best_epoch,
            best_train_loss=analysis.best_train_loss,
            stop_reason=self._stop[0] if self._stop is not None else StopReason.MAX_EPOCHS,
            device=str(self.device),
            duration_s=duration,
            history=list(self.history),
        )

    def _call(self, hook: str, module: TrainableModule, *args: Any) -> None:
        for method in self._hooks[hook]:
            method(self, module, *args)

    def _notify_exception(self, module: TrainableModule, error: BaseException) -> None:
        for method in self._hooks.get("on_exception", []):
            try:
                method(self, module, error)
            except Exception:
                logger.exception("a callback's on_exception failed while handling %r", error)


def _overridden(callbacks: Sequence[Callback], hook: str) -> list[Callable[..., None]]:
    """Bound hook methods of the callbacks that override ``hook`` (no-op hooks are never called)."""
    base = getattr(Callback, hook)
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook) is not base]


def _snapshot(
    module: TrainableModule, optimizer: torch.optim.Optimizer | None
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Copies to put back should a checkpoint fail half-way through being loaded."""
    weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return weights, None if optimizer is None else copy.deepcopy(optimizer.state_dict())


def _put_back(
    module: TrainableModule,
    optimizer: torch.optim.Optimizer | None,
    saved: tuple[dict[str, torch.Tensor], dict[str, Any] | None],
) -> None:
    module.load_state_dict(saved[0])
    if optimizer is not None and saved[1] is not None:
        optimizer.load_state_dict(saved[1])


def _length(loader: Iterable[Batch]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
