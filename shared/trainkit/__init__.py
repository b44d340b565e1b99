"""trainkit: the training library. One import for users::

    from shared.trainkit import Trainer, TrainerConfig, EarlyStopping, ...

Sets ``PYTORCH_ENABLE_MPS_FALLBACK=1`` (unless the environment already decides) before torch is
imported, so an operator MPS lacks runs on the CPU instead of failing the fit on a Mac.
"""

import os

os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

from shared.trainkit.callbacks import (
    CosineAnnealing,
    EarlyStopping,
    ModelCheckpoint,
    ProgressListener,
    ProgressReporter,
    ReduceLROnPlateau,
    RunRecorder,
    TelemetryCallback,
    Timer,
    TrainingProgress,
)
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.checkpoint import (
    Checkpoint,
    CheckpointHeader,
    checkpoint_bytes,
    config_hash,
    load_checkpoint,
    model_class_name,
    save_checkpoint,
)
from shared.trainkit.config import FitResult, Precision, StopReason, TrainerConfig
from shared.trainkit.decisions import TrainingAnalysis, analyze
from shared.trainkit.devices import describe_device, select_device
from shared.trainkit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DataNotFoundError,
    ModelNotFoundError,
    StorageError,
    TrainingCancelledError,
    TrainingDivergedError,
    TrainkitError,
)
from shared.trainkit.metrics import Accuracy, MeanAbsoluteError, MeanSquaredError
from shared.trainkit.spi import (
    Batch,
    Callback,
    DataModule,
    EpochMetrics,
    Metric,
    Stage,
    TrainableModule,
    TrainStepOutput,
    ValStepOutput,
)
from shared.trainkit.telemetry import Telemetry
from shared.trainkit.trainer import Trainer

__all__ = [
    "Accuracy",
    "Batch",
    "Callback",
    "CancelToken",
    "Checkpoint",
    "CheckpointError",
    "CheckpointHeader",
    "ConfigError",
    "CosineAnnealing",
    "DataError",
    "DataModule",
    "DataNotFoundError",
    "EarlyStopping",
    "EpochMetrics",
    "FitResult",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "ModelCheckpoint",
    "ModelNotFoundError",
    "Precision",
    "ProgressListener",
    "ProgressReporter",
    "ReduceLROnPlateau",
    "RunRecorder",
    "Stage",
    "StopReason",
    "StorageError",
    "Telemetry",
    "TelemetryCallback",
    "Timer",
    "TrainStepOutput",
    "TrainableModule",
    "Trainer",
    "TrainerConfig",
    "TrainingAnalysis",
    "TrainingCancelledError",
    "TrainingDivergedError",
    "TrainingProgress",
    "TrainkitError",
    "ValStepOutput",
    "analyze",
    "checkpoint_bytes",
    "config_hash",
    "describe_device",
    "load_checkpoint",
    "model_class_name",
    "save_checkpoint",
    "select_device",
]
