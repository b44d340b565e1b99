"""Keep the run record (:mod:`shared.trainkit.run_record`) of a fit in ``run_dir``, on every exit path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.trainkit.checkpoint import model_class_name
from shared.trainkit.config import FitResult
from shared.trainkit.devices import describe_device
from shared.trainkit.errors import TrainingCancelledError, TrainkitError
from shared.trainkit.run_record import ArtifactKind, RunRecord, RunStatus
from shared.trainkit.spi import Callback, EpochMetrics, TrainableModule

if TYPE_CHECKING:
    from shared.trainkit.trainer import Trainer


class RunRecorder(Callback):
    """Writes run.json at fit start, a metrics.jsonl line per epoch (from a background thread), and
    run_summary.json + artifacts.json when the fit completes, fails or is cancelled. ``provenance``
    (:mod:`shared.trainkit.provenance`: input hashes, versions) goes into run.json as it is."""

    def __init__(
        self,
        run_dir: Path | str,
        *,
        max_pending: int = 256,
        put_timeout_s: float = 1.0,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.provenance = dict(provenance or {})
        self.max_pending = max_pending
        self.put_timeout_s = put_timeout_s
        self.record: RunRecord | None = None
        self.summary: dict[str, Any] | None = None
        self._resuming = False

    def on_fit_start(self, trainer: Trainer, module: TrainableModule) -> None:
        self._start(trainer, module)

    def state_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resuming = True  # the fit resumes: append to the run rather than start it again

    def on_train_epoch_end(self, trainer: Trainer, module: TrainableModule, metrics: EpochMetrics) -> None:
        if self.record is not None:
            self.record.log_epoch(metrics.as_dict())

    def on_fit_end(self, trainer: Trainer, module: TrainableModule, result: FitResult) -> None:
        outcome = {k: v for k, v in result.as_dict().items() if k != "history"}
        self._finish(trainer, RunStatus.COMPLETED, **outcome)

    def on_exception(self, trainer: Trainer, module: TrainableModule, error: BaseException) -> None:
        if self.record is None or not self.record.started:
            self._start(trainer, module)  # failed before on_fit_start: still leave a complete record
        status = RunStatus.CANCELLED if isinstance(error, TrainingCancelledError) else RunStatus.FAILED
        details = error.details if isinstance(error, TrainkitError) else {}
        code = getattr(error, "code", type(error).__name__)
        failure = {"type": type(error).__name__, "code": code, "message": str(error), "details": details}
        self._finish(trainer, status, error=failure, epochs_trained=len(trainer.history))

    def _start(self, trainer: Trainer, module: TrainableModule) -> None:
        self.record = RunRecord(self.run_dir, max_pending=self.max_pending, put_timeout_s=self.put_timeout_s)
        self.summary = None
        fields: dict[str, Any] = {
            "config": trainer.config.as_dict(),
            "seed": trainer.config.seed,
            "device": describe_device(trainer.device),
            "model_class": model_class_name(module),
            "precision": trainer.precision,
            **self.provenance,
        }
        if self._resuming:
            self._resuming = False
            self.record.resume([m.as_dict() for m in trainer.history], **fields)
        else:
            self.record.start(**fields)

    def _finish(self, trainer: Trainer, status: RunStatus, **outcome: Any) -> None:
        if self.record is None:
            return
        for path, kind in trainer.artifacts.items():
            self.record.add_artifact(Path(path), _artifact_kind(kind))
        self.summary = self.record.finish(
            status, decisions=list(trainer.decisions), warnings=list(trainer.warnings), **outcome
        )


def _artifact_kind(kind: str) -> ArtifactKind:
    try:
        return ArtifactKind(kind)
    except ValueError:
        return ArtifactKind.OTHER
