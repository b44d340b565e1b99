"""Wire schemas of sweeps: a hyperparameter search (Optuna) over any training request."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.operations import StartTrainingRequest
from shared.contracts.results import ModelRefView


class ParamKind(StrEnum):
    FLOAT = "float"
    INT = "int"
    CATEGORICAL = "categorical"


class ParamSpec(BaseModel):
    """One searched value: a float (optionally log-scaled), an int, or a categorical."""

    model_config = ConfigDict(extra="forbid")

    type: ParamKind
    low: float | None = Field(None, description="float / int: the lower bound (inclusive).")
    high: float | None = Field(None, description="float / int: the upper bound (inclusive).")
    log: bool = Field(False, description="float / int: sample on a log scale (bounds must be > 0).")
    step: float | None = Field(
        None, gt=0, description="float / int: the grid step (the grid sampler needs it)."
    )
    choices: list[str | int | float | bool] | None = Field(None, description="categorical: the values tried.")


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(
        ...,
        min_length=1,
        max_length=100,
        description="A metric name: 'test.macro_f1' (a test metric), 'val_loss' (the last epoch's value, "
        "reported per epoch to the pruner), or a command's metric.",
    )
    direction: Literal["minimize", "maximize"] = "minimize"


class StartSweepRequest(BaseModel):
    """A base training request and a search space over paths into it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "base": {
                        "strategy": "trend_momentum",
                        "symbol": "EURUSD",
                        "timeframe": "1h",
                        "overrides": {"epochs": 5},
                    },
                    "space": {
                        "overrides.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                        "strategy.labels.threshold": {"type": "float", "low": 0.01, "high": 0.03},
                    },
                    "objective": {"metric": "val_loss", "direction": "minimize"},
                    "n_trials": 20,
                    "parallelism": 2,
                }
            ]
        },
    )

    base: StartTrainingRequest = Field(
        ..., description="The training every trial starts from (any workload)."
    )
    space: dict[str, ParamSpec] = Field(
        ...,
        min_length=1,
        max_length=32,
        description="Dotted paths into the base request ('overrides.learning_rate', 'command.params.lr') or "
        "into its strategy YAML ('strategy.labels.threshold', list items by index) -> what to try there.",
    )
    objective: Objective
    n_trials: int = Field(..., ge=1, description="Trials to run (at most MODELYARD_SWEEP_MAX_TRIALS).")
    parallelism: int = Field(1, ge=1, le=64, description="Trials running at once.")
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "none"] = "median"
    name: str | None = Field(None, max_length=100, description="A label shown in listings.")


class SweepStatusName(StrEnum):
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SweepTrialView(BaseModel):
    number: int
    operation_id: str
    status: str = Field(..., description="The trial operation's status (pending … completed, pruned).")
    params: dict[str, float | int | str | bool | None] = Field(
        ..., description="The trial's sampled values by path."
    )
    objective: float | None = None
    intermediate: dict[int, float] = Field(
        default_factory=dict,
        description="Step -> value of the objective metric: the trial's history while it runs, what "
        "Optuna was told once it ended.",
    )
    model: ModelRefView | None = Field(None, description="The trial's model version, once stored.")
    error: str | None = Field(
        None,
        description="Why the trial failed: its operation's error, or, for a trial whose params made a "
        "training request the backend refused (no operation), the refusal's message.",
    )


class SweepView(BaseModel):
    sweep_id: str
    name: str | None = None
    status: SweepStatusName
    objective: Objective
    n_trials: int
    parallelism: int
    sampler: str
    pruner: str
    space: dict[str, ParamSpec]
    created_at: datetime
    completed_at: datetime | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="Trials by status.")
    best: SweepTrialView | None = None
    best_alias: str | None = Field(None, description="The alias given to the best trial's model version.")
    error: str | None = None
    submitted_by: str | None = None
    trials: list[SweepTrialView] = Field(default_factory=list)
    importances: dict[str, float] | None = Field(
        None,
        description="Optuna's parameter importances, from when two trials completed. While the sweep runs "
        "they are recomputed at most once a minute (a computation takes CPU from the trials), in the "
        "background: a view may show the previous ones; a finished sweep's are from all its completed "
        "trials.",
    )
    importances_trials: int | None = Field(
        None, description="How many completed trials the importances were computed from."
    )


class SweepList(BaseModel):
    items: list[SweepView]


class StartSweepResponse(BaseModel):
    sweep_id: str
    status: SweepStatusName
    link: str
