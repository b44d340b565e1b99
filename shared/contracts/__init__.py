"""Wire schemas spoken by the backend, the host service and the executor. Pydantic only, never torch."""

from shared.contracts.training import (
    ProgressUpdate,
    TabularSpec,
    TabularTask,
    TrainingOverrides,
    TrainingRequest,
    Workload,
)

__all__ = [
    "ProgressUpdate",
    "TabularSpec",
    "TabularTask",
    "TrainingOverrides",
    "TrainingRequest",
    "Workload",
]
