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

The hot loop stays lean: on CPU the loss is read once per batch (reading is free there and lets the
divergence check name the batch before its NaN reaches the weights); on accelerators the losses stay
on the device and are checked for NaN/inf every ``DIVERGENCE_CHECK_EVERY`` batches in one sync, still
naming the first bad batch. Callbacks that do not override a hook cost nothing on that hook.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult, StopReason, TrainerConfig
from shared.trainkit.decisions import analyze
from shared.trainkit.devices import move_to_device, resolve_precision, select_device
from shared.trainkit.errors import DataError, TrainingDivergedError
from shared.trainkit.spi import (
    Batch,
    Callback,
    DataModule,
    EpochMetrics,
    Stage,
    TrainableModule,
    TrainStepOutput,
)

logger = logging.getLogger(__name__)

DIVERGENCE_CHECK_EVERY = 32
HOOKS: tuple[str, ...] = tuple(name for name in vars(Callback) if name.startswith("on_"))
_STOP_DECISIONS = {
    StopReason.EARLY_STOPPING: "early_stop",
    StopReason.TIME_LIMIT: "time_limit",
    StopReason.MAX_EPOCHS: "stop",
}


class Trainer:
    """Fits a module; callbacks read ``config``, ``device``, ``optimizer``, ``current_epoch``,
    ``history``, ``decisions``, ``total_batches`` and ``learning_rate``, and may ``request_stop``."""

    def __init__(
        self, config: TrainerConfig, callbacks: Sequence[Callback] = (), cancel: CancelToken | None = None
    ) -> None:
        self.config = config
        self.callbacks: list[Callback] = sorted(callbacks, key=lambda cb: getattr(cb, "runs_last", False))
        self.cancel = cancel
        self.device = torch.device("cpu")
        self.precision: str = config.precision
        self.optimizer: torch.optim.Optimizer | None = None
        self.current_epoch = 0
        self.total_batches: int | None = None
        self.history: list[EpochMetrics] = []
        self.decisions: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.artifacts: dict[str, str] = {}
        self._stop: tuple[StopReason, str] | None = None
        self._hooks: dict[str, list[Callable[..., None]]] = {}

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
    def stop_reason(self) -> StopReason | None:
        return None if self._stop is None else self._stop[0]

    def request_stop(self, reason: StopReason, message: str) -> None:
        """Ask the fit to stop after the current batch's epoch; the first request wins."""
        if self._stop is None:
            self._stop = (reason, message)
            self.record_decision(_STOP_DECISIONS[reason], message)

    def record_decision(self, kind: str, message: str, **details: Any) -> None:
        """Note a training decision (shown on the dashboard) for the current epoch."""
        self.decisions.append({"epoch": self.current_epoch, "kind": kind, "message": message, **details})
        logger.info("epoch %d: %s", self.current_epoch, message)

    def register_artifact(self, path: str, kind: str) -> None:
        """Note a file this fit produced (a run recorder lists it with size and hash)."""
        self.artifacts[str(path)] = kind

    def checkpoint_extra(self, module: TrainableModule) -> dict[str, Any]:
        """What a checkpoint carries beside the weights; calls every ``on_save_checkpoint``."""
        extra: dict[str, Any] = {
            "epoch": self.current_epoch,
            "history": [m.as_dict() for m in self.history],
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
        }
        if self.optimizer is not None:
            extra["optimizer"] = self.optimizer.state_dict()
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

    def fit(self, module: TrainableModule, data: DataModule) -> FitResult:
        """Train for up to ``config.max_epochs``; raises the trainkit errors after ``on_exception``."""
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        self._reset()
        try:
            return self._fit(module, data, time.perf_counter())
        except BaseException as error:
            self._notify_exception(module, error)
            raise
        finally:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)

    def _reset(self) -> None:
        self.history, self.decisions, self.warnings, self.artifacts = [], [], [], {}
        self.current_epoch, self.total_batches, self._stop = 0, None, None
        self._hooks = {name: _overridden(self.callbacks, name) for name in HOOKS}

    def _fit(self, module: TrainableModule, data: DataModule, started: float) -> FitResult:
        seed_everything(self.config.seed, deterministic=self.config.deterministic)
        self.device = select_device(self.config.device)
        self.precision, warning = resolve_precision(self.config.precision, self.device.type)
        if warning is not None:
            self.warnings.append(warning)
            logger.warning(warning)
        module.to(self.device)
        data.setup(Stage.FIT)
        train_loader = data.train_dataloader(self.config.batch_size)
        val_loader = data.val_dataloader(self.config.batch_size)
        self.optimizer = module.configure_optimizers(self.config.learning_rate)
        steps = _Stepper(self.optimizer, self.config, self.device, self.precision)
        self._call("on_fit_start", module)
        for epoch in range(self.config.max_epochs):
            self.current_epoch = epoch
            metrics = self._run_epoch(module, steps, train_loader, val_loader)
            self.history.append(metrics)
            self._call("on_train_epoch_end", module, metrics)
            if self._stop is not None:
                break
        result = self._result(time.perf_counter() - started)
        self._call("on_fit_end", module, result)
        return result

    def _run_epoch(
        self, module: TrainableModule, steps: _Stepper, train: Iterable[Batch], val: Iterable[Batch] | None
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
        self, module: TrainableModule, steps: _Stepper, loader: Iterable[Batch]
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
        self, module: TrainableModule, steps: _Stepper, loader: Iterable[Batch]
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
            raise _diverged(self.current_epoch, None, val_loss, "validation")
        metrics = {_prefixed("val_", key): total / size for key, total in extra.items()}
        if counted:
            metrics["val_accuracy"] = correct / size
        return val_loss, metrics

    def _result(self, duration: float) -> FitResult:
        analysis = analyze([m.as_dict() for m in self.history])
        return FitResult(
            epochs_trained=len(self.history),
            best_val_loss=analysis.best_val_loss,
            best_epoch=analysis.best_epoch,
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


class _Stepper:
    """Forward under autocast, backward (scaled for fp16), accumulation, clipping, optimizer step."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, config: TrainerConfig, device: torch.device, precision: str
    ):
        self.optimizer = optimizer
        self.accumulate = config.accumulate_grad_batches
        self.clip = config.gradient_clip_val
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.autocast_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda") if precision == "16-mixed" else None
        self.pending = 0
        optimizer.zero_grad(set_to_none=True)

    def forward(self, step: Callable[[Batch, int], Any], batch: Batch, batch_idx: int) -> Any:
        if self.autocast_dtype is None:
            return step(batch, batch_idx)
        with torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype):
            return step(batch, batch_idx)

    def backward(self, loss: torch.Tensor, batch_idx: int, total_batches: int | None) -> None:
        if self.accumulate > 1:
            loss = loss / self.accumulate
        if self.scaler is not None:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        else:
            loss.backward()  # type: ignore[no-untyped-call]
        self.pending += 1
        last = total_batches is not None and batch_idx + 1 == total_batches
        if self.pending == self.accumulate or last:
            self.step()

    def flush(self) -> None:
        """Apply gradients still accumulated when a loader of unknown length ran out."""
        if self.pending:
            self.step()

    def step(self) -> None:
        if self.scaler is not None:
            if self.clip is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.pending = 0


class LossTracker:
    """Mean training loss and step metrics of an epoch, and the NaN/inf check naming the batch.

    ``sync_every=1`` reads every loss at once (CPU); otherwise losses stay on the device and are
    checked and summed in one sync every ``sync_every`` batches (default ``DIVERGENCE_CHECK_EVERY``)."""

    def __init__(self, epoch: int, sync_every: int | None) -> None:
        self.epoch = epoch
        self.sync_every = sync_every or DIVERGENCE_CHECK_EVERY
        self.total = 0.0
        self.count = 0
        self.pending: list[torch.Tensor] = []
        self.first_pending = 0
        self.metrics: dict[str, float] = {}

    def add(self, output: TrainStepOutput, batch_idx: int) -> None:
        if self.sync_every == 1:
            value = output.loss.item()
            if not math.isfinite(value):
                raise _diverged(self.epoch, batch_idx, value, "training")
            self.total += value
            self.count += 1
        else:
            if not self.pending:
                self.first_pending = batch_idx
            self.pending.append(output.loss.detach())
            if len(self.pending) >= self.sync_every:
                self._sync()
        if output.metrics:
            for key, value in output.metrics.items():
                self.metrics[key] = self.metrics.get(key, 0.0) + float(value)

    def result(self) -> tuple[float, dict[str, float]]:
        self._sync()
        mean = {_prefixed("train_", key): total / self.count for key, total in self.metrics.items()}
        return self.total / self.count, mean

    def _sync(self) -> None:
        if not self.pending:
            return
        losses = torch.stack(self.pending).float()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0].item())
            raise _diverged(self.epoch, self.first_pending + bad, float(losses[bad].item()), "training")
        self.total += float(losses.sum().item())
        self.count += len(self.pending)
        self.pending = []


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; ``deterministic`` also forces deterministic torch kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matmuls; harmless without CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _diverged(epoch: int, batch: int | None, value: float, phase: str) -> TrainingDivergedError:
    where = f"epoch {epoch}, batch {batch}" if batch is not None else f"epoch {epoch} ({phase})"
    return TrainingDivergedError(
        f"{phase} loss became {value} at {where}; lower learning_rate, set gradient_clip_val, "
        "or check the data for NaN/inf values",
        epoch=epoch,
        batch=batch,
        phase=phase,
    )


def _overridden(callbacks: Sequence[Callback], hook: str) -> list[Callable[..., None]]:
    """Bound hook methods of the callbacks that override ``hook`` (no-op hooks are never called)."""
    base = getattr(Callback, hook)
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook) is not base]


def _length(loader: Iterable[Batch]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _prefixed(prefix: str, key: str) -> str:
    return key if key.startswith(("train_", "val_")) else prefix + key
