"""Backend settings from the environment (prefix ``MODELYARD_``; ``DATABASE_URL`` also read bare).

| variable | default | meaning |
|---|---|---|
| MODELYARD_HOST / MODELYARD_PORT | 127.0.0.1 / 8000 | where uvicorn listens |
| MODELYARD_DATABASE_URL or DATABASE_URL | sqlite:///./var/modelyard.db | SQLite or postgresql+psycopg://… |
| MODELYARD_MODELS_DIR | ./models | the model store |
| MODELYARD_DATA_DIR | ./data | candle CSVs (``{SYMBOL}_{TIMEFRAME}.csv``) |
| MODELYARD_STRATEGIES_DIR | ./strategies | strategy YAML files |
| MODELYARD_RUNS_DIR | ./var/runs | run records and per-operation logs |
| MODELYARD_LOCAL_CONCURRENCY | 1 | trainings run at once in-process |
| MODELYARD_PROGRESS_WRITE_INTERVAL_S | 1.0 | least time between two progress writes of one operation |
| MODELYARD_DEFAULT_EXECUTION_MODE | auto | local, host or auto |
| MODELYARD_PLUGIN_ALLOWLIST | (empty) | comma-separated module prefixes plugins may come from |
| MODELYARD_MAX_UPLOAD_BYTES | 104857600 | largest accepted request body |
| MODELYARD_LOG_LEVEL | INFO | DEBUG, INFO, WARNING, ERROR |
| MODELYARD_GENERATE_SAMPLE_DATA | true | write sample candles at start when the data folder has none |
| MODELYARD_SHUTDOWN_TIMEOUT_S | 10 | how long shutdown waits for running trainings to stop |
| MODELYARD_SSE_HEARTBEAT_S | 15 | seconds between heartbeat comments on an idle event stream |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.errors import SettingsError

ENV_PREFIX = "MODELYARD_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    database_url: str = Field(
        "sqlite:///./var/modelyard.db",
        validation_alias=AliasChoices("MODELYARD_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    models_dir: Path = Path("./models")
    data_dir: Path = Path("./data")
    strategies_dir: Path = Path("./strategies")
    runs_dir: Path = Path("./var/runs")
    local_concurrency: int = Field(1, ge=1, le=64)
    progress_write_interval_s: float = Field(1.0, ge=0, le=3600)
    default_execution_mode: Literal["local", "host", "auto"] = "auto"
    plugin_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    generate_sample_data: bool = True
    shutdown_timeout_s: float = Field(10.0, ge=0, le=600)
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300)

    @field_validator("plugin_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ValueError("use sqlite:///path/to.db or postgresql+psycopg://user@host:5432/db")
        return value

    @property
    def logs_dir(self) -> Path:
        return self.runs_dir / "operation-logs"


def _env_name(field: str) -> str:
    return (
        "DATABASE_URL (or MODELYARD_DATABASE_URL)" if field == "database_url" else ENV_PREFIX + field.upper()
    )


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            if field in ("MODELYARD_DATABASE_URL", "DATABASE_URL"):
                field = "database_url"
            problems.append(f"{_env_name(field)}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid settings: " + "; ".join(problems), problems=problems) from exc
