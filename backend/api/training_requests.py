"""What an operation was asked to do, and a strategy file's source: data the dashboard shows.

``OperationView`` carries the outcome but not the request, so a trainings table could not say which
strategy, symbol and timeframe a running operation trains; the wizard shows a strategy before it is
picked. Both are read-only views over what the backend already stores.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from backend.api.dependencies import OperationsDep, StrategiesDep
from backend.api.error_handlers import error_responses
from shared.contracts.results import ABSENT, Absent, OpenRecord
from shared.contracts.training import CommandSpec, Workload

router = APIRouter(tags=["dashboard"])

StrategyName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class GivenOverrides(OpenRecord):
    """The overrides a training was started with (see ``TrainingOverrides``); those not given are left
    out of the JSON."""

    epochs: int | Absent = ABSENT
    batch_size: int | Absent = ABSENT
    learning_rate: float | Absent = ABSENT
    early_stopping_patience: int | Absent = ABSENT
    seed: int | Absent = ABSENT
    device: str | Absent = ABSENT


class TrainingRequestView(BaseModel):
    """The resolved request of a training operation (the inline strategy text is left out)."""

    operation_id: str
    workload: Workload
    strategy: str | None = None
    symbols: list[str] = Field(default_factory=list)
    timeframes: list[str] = Field(default_factory=list)
    start_date: date | None = None
    end_date: date | None = None
    dataset: str | None = Field(None, description="Tabular workload: the CSV trained on.")
    plugin: str | None = None
    command: CommandSpec | None = Field(
        None, description="Command workload: the template's name, the params given and the dataset."
    )
    name: str | None = Field(None, description="The experiment's name, when one was given.")
    overrides: GivenOverrides = Field(default_factory=GivenOverrides, description="Only the overrides given.")


class StrategySource(BaseModel):
    name: str
    yaml: str


@router.get(
    "/api/v1/operations/{operation_id}/request",
    response_model=TrainingRequestView,
    responses=error_responses(404),
)
def get_operation_request(operation_id: str, operations: OperationsDep) -> TrainingRequestView:
    """What the operation was started with: strategy, symbols, timeframes and overrides, or the
    tabular dataset, the plugin, or the command (name, params, dataset)."""
    op = operations.get(operation_id)
    return training_request_view(op.id, op.request)


def training_request_view(operation_id: str, request: dict[str, Any]) -> TrainingRequestView:
    tabular = request.get("tabular") or {}
    command = request.get("command") if isinstance(request.get("command"), dict) else None
    overrides = {k: v for k, v in (request.get("overrides") or {}).items() if v is not None}
    return TrainingRequestView(
        operation_id=operation_id,
        workload=Workload(request.get("workload") or Workload.STRATEGY),
        strategy=request.get("strategy_name"),
        symbols=list(request.get("symbols") or []),
        timeframes=list(request.get("timeframes") or []),
        start_date=request.get("start_date"),
        end_date=request.get("end_date"),
        dataset=tabular.get("dataset") or (command or {}).get("dataset"),
        plugin=request.get("plugin"),
        command=CommandSpec.model_validate(command) if command is not None else None,
        name=request.get("name"),
        overrides=GivenOverrides.model_validate(overrides),
    )


@router.get(
    "/api/v1/strategies/{name}/source",
    response_model=StrategySource,
    responses=error_responses(404, 422),
)
def get_strategy_source(name: StrategyName, strategies: StrategiesDep) -> StrategySource:
    """The YAML text of a strategy file, as stored."""
    return StrategySource(name=name, yaml=strategies.read_text(name))
