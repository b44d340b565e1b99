"""The pipeline of the workloads that train a torch module in-process (strategy, tabular, plugin).

A template method: the workload's own pre-training phases, model creation, the Trainer with the
executor's callbacks, evaluation, feature importance, persistence. Each subclass declares which
pre-training phases it has and the progress weight of every step, built with :func:`model_steps`.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from functools import partial
from typing import Any

import torch

from shared.trainkit.callbacks import (
    EarlyStopping,
    ProgressReporter,
    RunRecorder,
    TelemetryCallback,
    TrainingCheckpoints,
    TrainingProgress,
)
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult
from shared.trainkit.executor.progress import PipelineProgress, Step
from shared.trainkit.executor.types import ModelArtifact, TrainingResult
from shared.trainkit.executor.workload import RunContext, StepReport, TrainingParams, Workload
from shared.trainkit.spi import Callback, DataModule, EpochMetrics, TrainableModule
from shared.trainkit.trainer import Trainer

logger = logging.getLogger(__name__)

#: Batch progress at most this often: pollers read it at about 1 Hz, and every report costs the
#: training loop a thread wake-up (several per second on small models otherwise).
BATCH_REPORT_INTERVAL_S = 0.25


def model_steps(pre_training: tuple[Step, ...], *, training: float, importance: float) -> tuple[Step, ...]:
    """``pre_training`` followed by the steps every model workload shares."""
    tail = [
        Step("model_creation", 1, "Creating model"),
        Step("training", training, "Training"),
        Step("evaluation", 3, "Evaluating on the test set"),
    ]
    if importance:
        tail.append(Step("feature_importance", importance, "Computing feature importance"))
    tail += [Step("persistence", 2, "Saving model"), Step("aggregation", 1, "Aggregating results")]
    return (*pre_training, *tail)


class ModelWorkload(Workload):
    """A workload whose model is a :class:`TrainableModule` trained here by the :class:`Trainer`."""

    @property
    def pre_training_phases(self) -> tuple[str, ...]:
        """The steps before model creation, in order (those of ``steps`` up to ``model_creation``)."""
        phases = [s.phase for s in self.steps]
        return tuple(phases[: phases.index("model_creation")])

    @abstractmethod
    def run_phase(self, phase: str, cancel: CancelToken, report: StepReport) -> str:
        """Run one of :attr:`pre_training_phases`; return a one-line summary for the log."""

    @abstractmethod
    def create_model(self) -> TrainableModule: ...

    @abstractmethod
    def data_module(self) -> DataModule: ...

    @abstractmethod
    def evaluate(self, module: TrainableModule, device: torch.device) -> dict[str, Any]: ...

    def feature_importance(
        self, module: TrainableModule, device: torch.device, cancel: CancelToken, report: StepReport
    ) -> dict[str, float]:
        return {}

    @abstractmethod
    def artifact(
        self,
        module: TrainableModule,
        fit: FitResult,
        test_metrics: dict[str, Any],
        importance: dict[str, float],
    ) -> ModelArtifact: ...

    def run(self, run: RunContext) -> TrainingResult:
        started = time.perf_counter()
        tracker, cancel = run.tracker, run.cancel
        cancel.raise_if_cancelled("data_loading")
        tracker.start("data_loading")
        self.validate()  # loads the data once; the data phase below reuses it
        for phase in self.pre_training_phases:
            cancel.raise_if_cancelled(phase)
            tracker.start(phase)
            summary = self.run_phase(phase, cancel, partial(tracker.report, phase))
            logger.info("%s: %s", phase, summary)

        cancel.raise_if_cancelled("model_creation")
        tracker.start("model_creation")
        module = self.create_model()
        tracker.total_epochs = self.params.epochs
        params_count = sum(p.numel() for p in module.parameters())
        logger.info("model: %s with %d parameters", type(module).__name__, params_count)

        fit, trainer = self._train(module, run)

        cancel.raise_if_cancelled("evaluation")
        tracker.start("evaluation")
        test_metrics = self.evaluate(module, trainer.device)
        logger.info("test metrics: %s", headline(test_metrics))

        importance: dict[str, float] = {}
        if "feature_importance" in {s.phase for s in self.steps}:
            tracker.start("feature_importance")
            importance = self.feature_importance(
                module, trainer.device, cancel, lambda f, m: tracker.report("feature_importance", f, m)
            )

        cancel.raise_if_cancelled("persistence")
        tracker.start("persistence")
        model_ref = run.sink.save(self.artifact(module, fit, test_metrics, importance))
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
            warnings=[*self.warnings, *trainer.warnings],
            resumed_from_epoch=trainer.resumed_from_epoch,
        )
        tracker.finish(f"completed: {headline(test_metrics)}")
        return result

    def _train(self, module: TrainableModule, run: RunContext) -> tuple[FitResult, Trainer]:
        params, tracker = self.params, run.tracker
        trainer = Trainer(
            params.trainer_config(), callbacks=training_callbacks(params, run), cancel=run.cancel
        )
        tracker.start("training", f"Training on up to {params.epochs} epochs")
        fit = trainer.fit(module, self.data_module(), resume_from=run.resume_from)
        logger.info(
            "training finished after %d epochs (%s) on %s; best val_loss %s at epoch %s",
            fit.epochs_trained,
            fit.stop_reason,
            fit.device,
            fit.best_val_loss,
            fit.best_epoch,
        )
        return fit, trainer


def training_callbacks(params: TrainingParams, run: RunContext) -> list[Callback]:
    """The callbacks every executor-run fit gets (``benchmarks/trainer_overhead.py`` times these)."""
    tracker = run.tracker
    callbacks: list[Callback] = [
        ProgressReporter(lambda p: _report_training(tracker, p), min_interval_s=BATCH_REPORT_INTERVAL_S),
        _EpochForwarder(tracker),
        TelemetryCallback(run.telemetry),
    ]
    if params.early_stopping_patience > 0:
        callbacks.append(
            EarlyStopping(
                monitor="val_loss",
                patience=params.early_stopping_patience,
                restore_best_weights=params.restore_best_weights,
            )
        )
    if run.run_dir is not None:
        callbacks.append(RunRecorder(run.run_dir, provenance=run.provenance))
    policy = run.checkpoint_policy
    if run.checkpoint_dir is not None and policy is not None:
        callbacks.append(
            TrainingCheckpoints(
                run.checkpoint_dir,
                every_n_epochs=policy.every_epochs,
                min_interval_s=policy.min_interval_s,
                keep_last=policy.keep_last,
            )
        )
    return callbacks


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
        self._decisions_seen = len(trainer.decisions) - _new_resume_decisions(trainer)
        if trainer.resumed_from_epoch:
            epoch, total = trainer.resumed_from_epoch, trainer.config.max_epochs
            self._tracker.report(
                "training",
                epoch / total,
                f"Resumed after epoch {epoch}/{total}",
                epoch=epoch,
                # The restored epochs too: a follower that missed the last ones before the fault (a
                # host's backend polls) gets them here, so the history has each epoch once, no gap.
                extra={
                    "resumed_from_epoch": epoch,
                    "resumed_history": [m.as_dict() for m in trainer.history],
                },
            )
        elif _new_resume_decisions(trainer):  # asked to resume, but no valid checkpoint: from scratch
            self._tracker.report(
                "training", 0.0, "Starting from scratch: no valid checkpoint", extra={"resumed_from_epoch": 0}
            )

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
        logger.info("epoch %d/%d: %s", number, total, headline(scalars))

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        self._flush_decisions(trainer)

    def _flush_decisions(self, trainer: Trainer) -> None:
        for decision in trainer.decisions[self._decisions_seen :]:
            self._tracker.report(
                "training", 0.0, str(decision.get("message", "")), extra={"decision": dict(decision)}
            )
        self._decisions_seen = len(trainer.decisions)


def _new_resume_decisions(trainer: Trainer) -> int:
    """The decisions this fit's resume added (those restored from the checkpoint were sent before)."""
    return 1 if trainer.decisions and trainer.decisions[-1].get("kind") == "resume" else 0


def _report_training(tracker: PipelineProgress, progress: TrainingProgress) -> None:
    tracker.report(
        "training", progress.fraction, progress.message, epoch=progress.epoch, metrics=progress.metrics
    )


def headline(metrics: dict[str, Any]) -> str:
    keys = ("accuracy", "macro_f1", "rmse", "r2", "train_loss", "val_loss", "val_accuracy", "loss")
    parts = [f"{k}={metrics[k]:.4f}" for k in keys if isinstance(metrics.get(k), int | float)]
    return ", ".join(parts) or "n/a"
