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
    aliases: dict[str, int] = Field(default_factory=dict, description="Alias -> the version it names.")


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
    aliases: list[str] = Field(default_factory=list, description="The aliases naming this version.")


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


DatasetKind = Literal["candles", "table"]
TableFormat = Literal["csv", "parquet"]


class DatasetView(BaseModel):
    """One file of the data folder: candles (``symbol``/``timeframe``, a date range) or a table (any
    CSV or Parquet file: train it with the tabular workload, ``dataset`` = ``path``)."""

    kind: DatasetKind = Field("candles", description="candles: SYMBOL_TIMEFRAME.csv; table: any CSV/Parquet.")
    symbol: str | None = Field(None, description="Candles only.")
    timeframe: str | None = Field(None, description="Candles only.")
    format: TableFormat = "csv"
    rows: int = 0
    columns: int | None = Field(None, description="Tables only: the number of columns.")
    start: str | None = None
    end: str | None = None
    path: str = Field("", description="The file's name relative to the data folder.")
    size_bytes: int | None = None
    sha256: str | None = None


class DatasetList(BaseModel):
    items: list[DatasetView]


class ColumnView(BaseModel):
    name: str
    dtype: str = Field(..., description="int64, float64, bool, string, datetime, or empty (no value).")
    missing: int = Field(..., description="Rows with no value in this column.")


class DataPreview(BaseModel):
    """A data file's columns (dtype, missing values), row count and first rows."""

    path: str
    kind: DatasetKind
    format: TableFormat
    rows: int
    size_bytes: int
    columns: list[ColumnView]
    sample_rows: list[list[str | int | float | bool | None]] = Field(
        default_factory=list, description="The first rows, values in column order (missing → null)."
    )


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


class SetExecutionModeRequest(BaseModel):
    """PUT /api/v1/system/execution-mode: the default for trainings that do not name a mode."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mode": "host"}]})

    mode: Literal["local", "host", "auto"]


class ExecutionModeView(BaseModel):
    default_execution_mode: str


class HealthView(BaseModel):
    status: str = "ok"
    database: str = "ok"
