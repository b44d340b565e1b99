"""The training pipeline shared by local and host execution."""

from shared.trainkit.executor.executor import STEPS, TrainingExecutor
from shared.trainkit.executor.types import (
    ModelArtifact,
    ModelRef,
    ModelSink,
    ProgressCallback,
    TrainingResult,
)

__all__ = [
    "STEPS",
    "ModelArtifact",
    "ModelRef",
    "ModelSink",
    "ProgressCallback",
    "TrainingExecutor",
    "TrainingResult",
]
