"""The training pipeline shared by local and host execution.

The executor itself (:mod:`~shared.trainkit.executor.executor`, which pulls in the trainer, callbacks and
workloads) is imported on first use, so the model store and other sinks can use the artifact types of
:mod:`~shared.trainkit.executor.types` without importing the executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.trainkit.executor.types import (
    ModelArtifact,
    ModelRef,
    ModelSink,
    ProgressCallback,
    TrainingResult,
)

if TYPE_CHECKING:
    from shared.trainkit.executor.executor import TrainingExecutor

__all__ = [
    "ModelArtifact",
    "ModelRef",
    "ModelSink",
    "ProgressCallback",
    "TrainingExecutor",
    "TrainingResult",
]


def __getattr__(name: str) -> Any:
    if name == "TrainingExecutor":
        from shared.trainkit.executor import executor

        return getattr(executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
