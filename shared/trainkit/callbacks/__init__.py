"""The callbacks trainkit ships: early stopping, checkpoints, progress, LR schedules, timing, run record,
telemetry."""

from shared.trainkit.callbacks.checkpointing import ModelCheckpoint
from shared.trainkit.callbacks.early_stopping import EarlyStopping
from shared.trainkit.callbacks.lr_scheduling import CosineAnnealing, ReduceLROnPlateau
from shared.trainkit.callbacks.progress import ProgressListener, ProgressReporter, TrainingProgress
from shared.trainkit.callbacks.run_recording import RunRecorder
from shared.trainkit.callbacks.telemetry import TelemetryCallback
from shared.trainkit.callbacks.timer import Timer
from shared.trainkit.callbacks.training_checkpoints import TrainingCheckpoints

__all__ = [
    "CosineAnnealing",
    "EarlyStopping",
    "ModelCheckpoint",
    "ProgressListener",
    "ProgressReporter",
    "ReduceLROnPlateau",
    "RunRecorder",
    "TelemetryCallback",
    "Timer",
    "TrainingCheckpoints",
    "TrainingProgress",
]
