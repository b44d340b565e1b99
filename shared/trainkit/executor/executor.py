"""TrainingExecutor: the one synchronous training pipeline, run alike in the backend and on a host.

It never knows where it runs (in-process worker thread or host child process) nor how it was invoked.
It does know the hardware: the device is chosen by the trainer (CUDA > MPS > CPU) and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from shared.contracts.training import TrainingRequest
from shared.trainkit.callbacks import EarlyStopping, ProgressReporter, RunRecorder, TrainingProgress
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult
from shared.trainkit.devices import select_device
from shared.trainkit.errors import ConfigError
from shared.trainkit.executor.progress import PipelineProgress, Step
from shared.trainkit.executor.types import ModelSink, ProgressCallback, TrainingResult
from shared.trainkit.executor.workload import PRE_TRAINING_PHASES, Workload
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule
from shared.trainkit.trainer import Trainer

logger = logging.getLogger(__name__)

STEPS: tuple[Step, ...] = (
    Step("data_loading", 4, "Loading data"),
    Step("indicators", 4, "Computing indicators"),
    Step("fuzzy_memberships", 3, "Computing fuzzy memberships"),
    Step("features", 2, "Engineering features"),
    Step("labels", 2, "Generating labels"),
    Step("dataset", 2, "Preparing dataset"),
    Step("model_creation", 1, "Creating model"),
    Step("training", 72, "Training"),
    Step("evaluation", 3, "Evaluating on the test set"),
    Step("feature_importance", 4, "Computing feature importance"),
    Step("persistence", 2, "Saving model"),
    Step("aggregation", 1, "Aggregating results"),
)


class TrainingExecutor:
    """Runs one training request to completion, or raises a ``TrainkitError``.

    ``sink`` persists the model (the backend's ModelStorage, or a host's hand-off store); ``run_root``, when
    given, receives a run record folder per execution; ``plugin_allowlist`` names the module prefixes a
    plugin workload may be imported from.
    """

    def __init__(
        self,
        data_dir: Path,
        sink: ModelSink,
        *,
        run_root: Path | None = None,
        plugin_allowlist: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.sink = sink
        self.run_root = run_root
        self.plugin_allowlist = tuple(plugin_allowlist)

    def workload(self, request: TrainingRequest) -> Workload:
        from shared.trainkit.workloads import create_workload

        return create_workload(request, self.data_dir, self.plugin_allowlist)

    def validate(self, request: TrainingRequest) -> list[str]:
        """Preflight before a request is accepted: parse the configuration and check the data the way
        ``execute`` would in its data phase (dates, enough rows); raises what would fail; returns warnings.

        The device is not checked here: the request may still be routed to a host that has it."""
        workload = self.workload(request)
        workload.validate()
        return list(workload.warnings)

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
    ) -> TrainingResult:
        started = time.perf_counter()
        check_device(request)
        tracker = PipelineProgress(STEPS, progress)
        workload = self.workload(request)
        cancel.raise_if_cancelled("data_loading")
        tracker.start("data_loading")
        workload.validate()  # loads the data once; the data phase below reuses it
        for phase in PRE_TRAINING_PHASES:
            cancel.raise_if_cancelled(phase)
            tracker.start(phase)
            summary = workload.run_phase(phase, cancel, partial(tracker.report, phase))
            logger.info("%s: %s", phase, summary)

        cancel.raise_if_cancelled("model_creation")
        tracker.start("model_creation")
        module = workload.create_model()
        tracker.total_epochs = workload.params.epochs
        params_count = sum(p.numel() for p in module.parameters())
        logger.info("model: %s with %d parameters", type(module).__name__, params_count)

        fit, trainer = self._train(workload, module, tracker, cancel, run_name)

        cancel.raise_if_cancelled("evaluation")
        tracker.start("evaluation")
        test_metrics = workload.evaluate(module, trainer.device)
        logger.info("test metrics: %s", _headline(test_metrics))

        tracker.start("feature_importance")
        importance = workload.feature_importance(
            module, trainer.device, cancel, lambda f, m: tracker.report("feature_importance", f, m)
        )

        cancel.raise_if_cancelled("persistence")
        tracker.start("persistence")
        artifact = workload.artifact(module, fit, test_metrics, importance)
        model_ref = self.sink.save(artifact)
        logger.info("model saved: %s/%s v%d", model_ref.strategy, model_ref.name, model_ref.version)

        tracker.start("aggregation")
        result = TrainingResult(
            model=model_ref,
            device=fit.device,
            test_metrics=test_metrics,
            history=[m.as_dict() for m in fit.history],
            best_epoch=fit.best_epoch,
            best_val_loss=fit.best_val_loss,
            epochs_trained=fit.epochs_trained,
            stop_reason=str(fit.stop_reason),
            feature_importance=importance,
            duration_s=round(time.perf_counter() - started, 3),
            decisions=[dict(d) for d in trainer.decisions],
            warnings=list(workload.warnings),
        )
        tracker.finish(f"completed: {_headline(test_metrics)}")
        return result

    def _train(
        self,
        workload: Workload,
        module: TrainableModule,
        tracker: PipelineProgress,
        cancel: CancelToken,
        run_name: str | None,
    ) -> tuple[FitResult, Trainer]:
        params = workload.params
        callbacks: list[Callback] = [
            ProgressReporter(lambda p: _report_training(tracker, p)),
            _EpochForwarder(tracker),
        ]
        if params.early_stopping_patience > 0:
            callbacks.append(EarlyStopping(monitor="val_loss", patience=params.early_stopping_patience))
        if self.run_root is not None:
            folder = run_name or time.strftime("run-%Y%m%d-%H%M%S")
            callbacks.append(RunRecorder(self.run_root / folder))
        trainer = Trainer(params.trainer_config(), callbacks=callbacks, cancel=cancel)
        tracker.start("training", f"Training on up to {params.epochs} epochs")
        fit = trainer.fit(module, workload.data_module())
        logger.info(
            "training finished after %d epochs (%s) on %s; best val_loss %s at epoch %s",
            fit.epochs_trained,
            fit.stop_reason,
            fit.device,
            fit.best_val_loss,
            fit.best_epoch,
        )
        return fit, trainer


class _EpochForwarder(Callback):
    """Sends the chosen device, each finished epoch's metrics and any new decisions out as progress
    ``extra`` payloads, so a service can show them while the run goes on."""

    def __init__(self, tracker: PipelineProgress) -> None:
        self._tracker = tracker
        self._decisions_seen = 0

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        device = str(trainer.device)
        logger.info("training on %s", device)
        self._tracker.report("training", 0.0, f"Training on {device}", extra={"device": device})

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        total = trainer.config.max_epochs
        record = metrics.as_dict()
        number = metrics.epoch
        scalars = {k: float(v) for k, v in record.items() if isinstance(v, int | float) and k != "epoch"}
        self._tracker.report(
            "training",
            number / total,
            f"Epoch {number}/{total}",
            epoch=number,
            metrics=scalars,
            extra={"epoch_metrics": record},
        )
        self._flush_decisions(trainer)
        logger.info("epoch %d/%d: %s", number, total, _headline(scalars))

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        self._flush_decisions(trainer)

    def _flush_decisions(self, trainer: Trainer) -> None:
        for decision in trainer.decisions[self._decisions_seen :]:
            self._tracker.report(
                "training", 0.0, str(decision.get("message", "")), extra={"decision": dict(decision)}
            )
        self._decisions_seen = len(trainer.decisions)


def _report_training(tracker: PipelineProgress, progress: TrainingProgress) -> None:
    tracker.report(
        "training", progress.fraction, progress.message, epoch=progress.epoch, metrics=progress.metrics
    )


def check_device(request: TrainingRequest) -> None:
    """Fail fast when the request names a device (cuda, mps) this machine does not have."""
    wanted = request.overrides.device
    if wanted is None or wanted in ("auto", "cpu"):
        return
    try:
        select_device(wanted)
    except ConfigError as exc:
        raise ConfigError(f"overrides.device: {exc.message}", field="overrides.device", value=wanted) from exc


def _headline(metrics: dict[str, Any]) -> str:
    keys = ("accuracy", "macro_f1", "rmse", "r2", "train_loss", "val_loss", "val_accuracy")
    parts = [f"{k}={metrics[k]:.4f}" for k in keys if isinstance(metrics.get(k), int | float)]
    return ", ".join(parts) or "n/a"
