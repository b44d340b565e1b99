"""Wire schemas of the backend's catalogue and system endpoints, and the one error body (pydantic only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.operations import ErrorInfo


class ErrorBody(BaseModel):
    """Every non-2xx response of the backend has this shape."""

    error: ErrorInfo


class ModelSummary(BaseModel):
    strategy: str
    name: str
    latest_version: int | None = None
    versions: int = 0
    updated_at: str | None = None


class ModelVersionView(BaseModel):
    strategy: str
    name: str
    version: int
    path: str = ""
    created_at: str | None = None
    is_latest: bool = False
    size_bytes: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)


class ModelDetail(BaseModel):
    strategy: str
    name: str
    versions: list[ModelVersionView]


class StrategySummary(BaseModel):
    name: str
    path: str = ""
    description: str = ""
    valid: bool = True
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


_VALIDATE_EXAMPLE: dict[str, Any] = {
    "strategy_yaml": "name: my_strategy\n# ... the rest of a strategy file ..."
}


class ValidateStrategyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_VALIDATE_EXAMPLE]})

    strategy_yaml: str = Field(..., min_length=1, max_length=200_000)


class ValidateStrategyResponse(BaseModel):
    valid: bool
    name: str | None = None
    error: ErrorInfo | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


class DatasetView(BaseModel):
    symbol: str
    timeframe: str
    rows: int = 0
    start: str | None = None
    end: str | None = None
    path: str = ""
    size_bytes: int | None = None
    sha256: str | None = None


class DatasetList(BaseModel):
    items: list[DatasetView]


class ExecutionModeState(BaseModel):
    mode: str
    available: bool
    detail: str = ""


class HostView(BaseModel):
    """One configured host service as the backend's last background health check saw it."""

    url: str
    healthy: bool
    device_kind: str | None = None
    device_name: str | None = None
    capacity: int = 0
    sessions_in_use: int = 0
    version: str | None = None
    checked_at: str | None = None
    last_ok_at: str | None = None
    error: str | None = None


class RayClusterView(BaseModel):
    """The Ray cluster of ray mode (MODELYARD_RAY_ADDRESS) as the last background check saw it."""

    address: str
    healthy: bool
    version: str | None = None
    nodes: int = 0
    cpus: float = 0
    gpus: float = 0
    free_cpus: float = 0
    free_gpus: float = 0
    checked_at: str | None = None
    error: str | None = None


class SystemView(BaseModel):
    version: str
    device: str
    default_execution_mode: str
    execution_modes: list[ExecutionModeState]
    queue_depth: int
    running: int
    local_concurrency: int
    database: str
    hosts: list[HostView] = Field(default_factory=list)
    ray: RayClusterView | None = Field(None, description="The Ray cluster; null when none is configured.")


class SetExecutionModeRequest(BaseModel):
    """PUT /api/v1/system/execution-mode: the default for trainings that do not name a mode."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mode": "host"}]})

    mode: Literal["local", "host", "ray", "auto"]


class ExecutionModeView(BaseModel):
    default_execution_mode: str


class HealthView(BaseModel):
    status: str = "ok"
    database: str = "ok"
