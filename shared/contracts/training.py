"""The training request and progress as they travel between backend, host and executor (no torch)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Workload(StrEnum):
    STRATEGY = "strategy"
    TABULAR = "tabular"
    PLUGIN = "plugin"
    COMMAND = "command"


class TabularTask(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class TrainingOverrides(BaseModel):
    """Per-request changes to the training parameters of a strategy (or the defaults of a workload)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int | None = Field(None, ge=1, le=10_000, description="Maximum number of epochs.")
    batch_size: int | None = Field(None, ge=1, le=65_536, description="Samples per batch.")
    learning_rate: float | None = Field(None, gt=0, le=10, description="Optimizer learning rate.")
    early_stopping_patience: int | None = Field(
        None, ge=0, le=10_000, description="Epochs without improvement before stopping (0 disables)."
    )
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Random seed.")
    device: str | None = Field(
        None,
        pattern="^(auto|cpu|cuda|mps)$",
        description="Device: auto (CUDA > MPS > CPU), cpu, cuda or mps.",
    )


class TabularSpec(BaseModel):
    """What to learn from a tabular CSV in the data folder."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(..., min_length=1, description="File name of a CSV in the data folder.")
    target: str = Field(..., min_length=1, description="Name of the target column.")
    task: TabularTask = TabularTask.CLASSIFICATION
    hidden_layers: list[int] = Field(default_factory=lambda: [64, 32])


#: A command's name and its param names: what a template file may be called and declare.
COMMAND_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: Scalar values a command param can take on the wire; the template decides which one is valid.
ParamValue = bool | int | float | str


class CommandSpec(BaseModel):
    """Which operator-registered command to run, with what params and data."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ..., pattern=COMMAND_NAME_PATTERN, description="Name of a command template (GET /api/v1/commands)."
    )
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Values of the template's params; missing ones take their default."
    )
    dataset: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="A file or folder of the data folder, relative to it (becomes {dataset_path}).",
    )


class ResourceRequest(BaseModel):
    """What a Ray job reserves on the cluster (ray mode only; other modes ignore it)."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1.0, gt=0, le=1024, description="CPUs the training's Ray job reserves.")
    memory_mb: int | None = Field(
        None, ge=64, le=16 * 1024 * 1024, description="Memory (MiB) the job reserves; none by default."
    )


class TrainingRequest(BaseModel):
    """A fully resolved training request: everything the executor needs, nothing environment-specific.

    For the strategy workload ``strategy_yaml`` holds the strategy text itself (not a path), so a host
    with no shared filesystem can run it.
    """

    model_config = ConfigDict(extra="forbid")

    workload: Workload = Workload.STRATEGY
    strategy_name: str | None = None
    strategy_yaml: str | None = None
    symbols: list[str] = Field(default_factory=list)
    timeframes: list[str] = Field(default_factory=list)
    start_date: date | None = None
    end_date: date | None = None
    tabular: TabularSpec | None = None
    plugin: str | None = Field(None, description="Import path 'package.module:factory' of a plugin.")
    command: CommandSpec | None = None
    name: str | None = Field(None, description="The experiment's name; a command run's {run_name}.")
    overrides: TrainingOverrides = Field(default_factory=TrainingOverrides)
    resources: ResourceRequest | None = Field(None, description="Ray mode: CPUs and memory to reserve.")

    @model_validator(mode="after")
    def _workload_fields(self) -> TrainingRequest:
        if self.workload is Workload.STRATEGY:
            if not self.strategy_yaml:
                raise ValueError("strategy workload needs strategy_yaml")
            if not self.symbols or not self.timeframes:
                raise ValueError("strategy workload needs at least one symbol and one timeframe")
        elif self.workload is Workload.TABULAR and self.tabular is None:
            raise ValueError("tabular workload needs 'tabular' (dataset, target, task)")
        elif self.workload is Workload.PLUGIN and not self.plugin:
            raise ValueError("plugin workload needs 'plugin' ('package.module:factory')")
        elif self.workload is Workload.COMMAND and self.command is None:
            raise ValueError("command workload needs 'command' (name, params, dataset)")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError("start_date must not be after end_date")
        return self


class ProgressUpdate(BaseModel):
    """One progress report. ``percentage`` never goes backwards within one run."""

    percentage: float = Field(..., ge=0, le=100)
    phase: str
    message: str = ""
    epoch: int | None = None
    total_epochs: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
