"""What every workload is to the executor: its declared steps, a validate and a run; and the run context."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import TrainerConfig
from shared.trainkit.executor.progress import PipelineProgress, Step
from shared.trainkit.executor.types import ModelSink, TrainingResult

if TYPE_CHECKING:
    from shared.trainkit.telemetry import Telemetry

StepReport = Callable[[float, str], None]


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a model workload writes resumable training checkpoints: every ``every_epochs`` epochs but
    not more often than every ``min_interval_s`` seconds, the last ``keep_last`` kept."""

    every_epochs: int = 1
    min_interval_s: float = 30.0
    keep_last: int = 2


@dataclass(frozen=True)
class RunContext:
    """What one execution hands its workload: progress, cancellation, persistence and the run record.

    ``checkpoint_dir`` (with ``checkpoint_policy``) receives training checkpoints; ``resume_from``, when
    set, is the folder (or file) the fit resumes from."""

    tracker: PipelineProgress
    cancel: CancelToken
    sink: ModelSink
    run_name: str
    run_dir: Path | None
    telemetry: Telemetry
    checkpoint_dir: Path | None = None
    checkpoint_policy: CheckpointPolicy | None = None
    resume_from: Path | None = None
    #: What the run was made from (input files' and defining texts' sha256, versions): into run.json.
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingParams:
    """Resolved training parameters: workload defaults, then the request's overrides."""

    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    early_stopping_patience: int = 5
    #: End the fit with the best epoch's weights (by val_loss) rather than the last epoch's.
    restore_best_weights: bool = False
    seed: int = 42
    device: str = "auto"

    def trainer_config(self) -> TrainerConfig:
        return TrainerConfig(
            max_epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
            device=self.device,  # type: ignore[arg-type]  # validated by TrainerConfig
        )


class Workload(ABC):
    """One kind of training. It declares its pipeline ``steps`` (phase, progress weight, label) and runs
    them in :meth:`run`; the executor only builds the context and knows no workload's steps."""

    kind: str = ""
    steps: tuple[Step, ...] = ()
    #: Whether ``overrides.device`` names a device this machine must have (not so for a command).
    checks_device: bool = True

    def __init__(self, request: TrainingRequest, data_dir: Path) -> None:
        self.request = request
        self.data_dir = data_dir
        self.params = TrainingParams()
        self.warnings: list[str] = []

    @abstractmethod
    def validate(self) -> None:
        """Cheap checks before a request is accepted: parse configs, find data. Raise TrainkitError."""

    @abstractmethod
    def run(self, run: RunContext) -> TrainingResult:
        """Run the whole pipeline, reporting each of ``steps`` through ``run.tracker``."""

    def input_files(self) -> list[Path]:
        """The data files the run reads (their sha256 goes into run.json)."""
        return []

    def source_texts(self) -> dict[str, str]:
        """The texts that define the run, by name (their sha256 goes into run.json)."""
        return {}

    def apply_overrides(self) -> None:
        """Fold the request's overrides into ``self.params`` (after the workload set its defaults)."""
        o = self.request.overrides
        for name in ("batch_size", "learning_rate", "early_stopping_patience", "seed", "device"):
            value = getattr(o, name)
            if value is not None:
                setattr(self.params, name, value)
        if o.epochs is not None:
            self.params.epochs = o.epochs
