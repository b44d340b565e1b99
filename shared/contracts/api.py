"""Wire schemas of the backend's catalogue and system endpoints, and the one error body (pydantic only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.operations import ErrorDetails, ErrorInfo, ExecutionModeName
from shared.contracts.results import ABSENT, Absent, HistoryRow, Number, OpenRecord, TestMetrics


class ErrorBody(BaseModel):
    """Every non-2xx response of the backend has this shape."""

    error: ErrorInfo


class ModelSummary(BaseModel):
    strategy: str
    name: str
    latest_version: int | None = None
    versions: int = 0
    updated_at: datetime | None = None
    aliases: dict[str, int] = Field(default_factory=dict, description="Alias -> the version it names.")


class FitSummary(OpenRecord):
    """How the model's training went (``metrics.json``'s ``fit``)."""

    epochs_trained: int | Absent | None = ABSENT
    best_epoch: int | Absent | None = ABSENT
    best_val_loss: Number | Absent | None = ABSENT
    best_train_loss: Number | Absent | None = ABSENT
    stop_reason: str | Absent | None = ABSENT
    device: str | Absent | None = ABSENT
    duration_s: Number | Absent | None = ABSENT
    history: list[HistoryRow] | Absent | None = ABSENT


class ModelMetrics(OpenRecord):
    """A model version's ``metrics.json``: test metrics and the fit; a workload may add its own."""

    test: TestMetrics | Absent | None = ABSENT
    fit: FitSummary | Absent | None = ABSENT
    final: dict[str, Number] | Absent | None = Field(
        ABSENT, description="Command runs: each metric's last value."
    )
    best_val_loss: Number | Absent | None = Field(
        ABSENT, description="Command runs: the lowest val_loss printed."
    )


class ModelVersionView(BaseModel):
    strategy: str
    name: str
    version: int
    path: str = ""
    created_at: datetime | None = None
    is_latest: bool = False
    size_bytes: int | None = None
    metrics: ModelMetrics = Field(default_factory=ModelMetrics)
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
    details: ErrorDetails = Field(default_factory=dict, description="Free-form JSON values of the error.")


_VALIDATE_EXAMPLE: dict[str, Any] = {
    "strategy_yaml": "name: my_strategy\n# ... the rest of a strategy file ..."
}


class ValidateStrategyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_VALIDATE_EXAMPLE]})

    strategy_yaml: str = Field(..., min_length=1, max_length=200_000)


class StrategyValidationSummary(OpenRecord):
    """What a valid strategy declares; empty when it is invalid."""

    name: str | Absent | None = ABSENT
    description: str | Absent | None = ABSENT
    indicators: list[str] | Absent | None = Field(ABSENT, description="Indicator ids.")
    features: list[str] | Absent | None = Field(ABSENT, description="Fuzzy-set feature names, sorted.")


class ValidateStrategyResponse(BaseModel):
    valid: bool
    name: str | None = None
    error: ErrorInfo | None = None
    summary: StrategyValidationSummary = Field(default_factory=StrategyValidationSummary)


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
    # Text as the catalogue writes it (ISO 8601, "+00:00"): the data routes' own answer, left as it is.
    start: str | None = Field(None, description="Candles only: the first candle's time, ISO 8601.")
    end: str | None = Field(None, description="Candles only: the last candle's time, ISO 8601.")
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
    mode: ExecutionModeName
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
    checked_at: datetime | None = None
    last_ok_at: datetime | None = None
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
    checked_at: datetime | None = None
    error: str | None = None


class SystemView(BaseModel):
    version: str
    device: str
    default_execution_mode: ExecutionModeName
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
    default_execution_mode: ExecutionModeName


class HealthView(BaseModel):
    status: str = "ok"
    database: str = "ok"
