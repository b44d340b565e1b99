"""Backend settings from the environment (prefix ``MODELYARD_``; ``DATABASE_URL`` also read bare).

| variable | default | meaning |
|---|---|---|
| MODELYARD_HOST / MODELYARD_PORT | 127.0.0.1 / 8000 | where uvicorn listens |
| MODELYARD_DATABASE_URL or DATABASE_URL | sqlite:///./var/modelyard.db | SQLite or postgresql+psycopg://… |
| MODELYARD_MODELS_DIR | ./models | the model store |
| MODELYARD_DATA_DIR | ./data | candle CSVs (``{SYMBOL}_{TIMEFRAME}.csv``) |
| MODELYARD_STRATEGIES_DIR | ./strategies | strategy YAML files |
| MODELYARD_COMMANDS_DIR | ./commands | command templates (one YAML file per training program) |
| MODELYARD_RUNS_DIR | ./var/runs | run records and per-operation logs |
| MODELYARD_LOCAL_CONCURRENCY | 1 | trainings run at once in-process |
| MODELYARD_LOCAL_TRAINING_THREADS | cores - 1 (at least 1) | torch CPU threads of the server's in-process trainings |
| MODELYARD_PROGRESS_WRITE_INTERVAL_S | 1.0 | least time between two progress writes of one operation |
| MODELYARD_DEFAULT_EXECUTION_MODE | auto | local, host, ray or auto |
| MODELYARD_PLUGIN_ALLOWLIST | (empty) | comma-separated module prefixes plugins may come from |
| MODELYARD_MAX_UPLOAD_BYTES | 104857600 | largest accepted request body |
| MODELYARD_LOG_LEVEL | INFO | DEBUG, INFO, WARNING, ERROR |
| MODELYARD_GENERATE_SAMPLE_DATA | true | write sample candles (and strategies) at start when their folder has none |
| MODELYARD_SHUTDOWN_TIMEOUT_S | 10 | how long shutdown waits for running trainings to stop |
| MODELYARD_SSE_HEARTBEAT_S | 15 | seconds between heartbeat comments on an idle event stream |
| MODELYARD_SSE_MIN_INTERVAL_S | 0.25 | least time between two progress events to one client (lifecycle events are never held) |
| MODELYARD_HEALTH_CACHE_S | 2 | /health answers from a database check at most this old (0: check on every call) |
| MODELYARD_INSTANCE_LEASE_S | 15 | a backend silent for longer is dead: another one fails its local operations as interrupted |

API tokens (see docs/operations.md, "API tokens"):

| variable | default | meaning |
|---|---|---|
| MODELYARD_AUTH | auto | auto: tokens required beyond loopback or once an unrevoked one exists; required; off (loopback only) |
| MODELYARD_INSECURE_NO_AUTH | false | serve without tokens wherever it listens (trusted networks; warned at every start) |
| MODELYARD_METRICS_PUBLIC | false | /metrics without a token (else it takes a read token when tokens are required) |

Host mode (see docs/operations.md, "Host mode" and "Failure handling"):

| variable | default | meaning |
|---|---|---|
| MODELYARD_HOSTS | (empty) | comma-separated base URLs of host services, e.g. http://10.0.0.5:5002 |
| MODELYARD_SHARED_SECRET / _SECRETS | (none) | HMAC secret(s) shared with the hosts (`whsec_<base64>` or any string); several while rotating |
| MODELYARD_PUBLIC_URL | http://{host}:{port} | how hosts reach this backend (callback and data URLs) |
| MODELYARD_HOST_LEASE_S | 30 | a host silent for longer fails its operations with host_lost |
| MODELYARD_HOST_HEALTH_INTERVAL_S | 5 | seconds between background health checks of each host |
| MODELYARD_HOST_HEALTH_TIMEOUT_S | 2 | timeout of one health check (connect and read) |
| MODELYARD_HOST_REQUEST_TIMEOUT_S | 10 | timeout of start / status / stop / ack calls |
| MODELYARD_HOST_TRANSFER_TIMEOUT_S | 300 | read timeout while pulling a result or streaming a model |
| MODELYARD_HOST_POLL_INITIAL_S / _MAX_S | 1 / 5 | status polling starts here and backs off to the max |
| MODELYARD_HOST_RESULT_PULL_DELAY_S | 3 | after the host says completed, wait this long for the callback, then pull |
| MODELYARD_CALLBACK_MAX_BYTES | 64 MiB | largest accepted result callback body (413 beyond) |
| MODELYARD_INLINE_MODEL_MAX_BYTES | 32 MiB | largest model accepted inline (gzip+base64); bigger ones come by reference |
| MODELYARD_MAX_MODEL_BYTES | 4 GiB | largest model accepted by reference (streamed to a temp file) |
| MODELYARD_MAX_RETRIES | 2 | retries of an infrastructure fault: a lost host's training (another host or local), a lost Ray job (a new job), a local training whose backend died |
| MODELYARD_CANCEL_GRACE_S | 15 | a cancel the host does not confirm within this is forced to cancelled |

Sweeps (see docs/api.md, "Sweeps"):

| variable | default | meaning |
|---|---|---|
| MODELYARD_SWEEP_MAX_TRIALS | 1000 | the largest n_trials a sweep may ask for (422 above) |
| MODELYARD_SWEEP_POLL_INTERVAL_S | 5 | the sweep driver's safety-net pass (trials' events drive it between passes); also how soon a dead backend's sweep is adopted |

Ray mode (see docs/ray.md):

| variable | default | meaning |
|---|---|---|
| MODELYARD_RAY_ADDRESS | (empty) | the Ray Jobs API, e.g. http://10.0.0.9:8265; empty: no ray mode |
| MODELYARD_RAY_ENTRYPOINT | modelyard | the `modelyard` command as the cluster's workers run it |
| MODELYARD_RAY_COMMANDS_DIR | (empty) | the command templates' folder on the workers; empty: no command trainings in ray mode |
| MODELYARD_RAY_HEALTH_INTERVAL_S | 5 | seconds between background checks of the cluster |
| MODELYARD_RAY_REQUEST_TIMEOUT_S | 5 | timeout of one Jobs API call |
| MODELYARD_RAY_POLL_S | 1 | seconds between two looks at a running job's status and log |
| MODELYARD_RAY_LEASE_S | 30 | a cluster silent for longer loses its jobs (ray_job_lost) |
| MODELYARD_RAY_JOB_TOKEN_TTL_S | 86400 | lifetime of a Ray job's credential (its job token) |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.errors import SettingsError
from shared.contracts.signing import check_secrets

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
    commands_dir: Path = Field(
        Path("./commands"), description="Folder of command templates (one YAML file per training program)."
    )
    runs_dir: Path = Path("./var/runs")
    local_concurrency: int = Field(1, ge=1, le=64)
    local_training_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch CPU threads of the server's in-process trainings; unset: one fewer than the "
        "cores (at least 1), so the event loop that answers the API keeps a core to itself.",
    )
    checkpoint_every_epochs: int = Field(
        1, ge=1, le=100_000, description="A local training writes a resumable checkpoint every N epochs."
    )
    checkpoint_min_interval_s: float = Field(
        30.0, ge=0, le=86_400, description="… but not more often than every this many seconds."
    )
    health_cache_s: float = Field(2.0, ge=0, le=60)
    progress_write_interval_s: float = Field(1.0, ge=0, le=3600)
    default_execution_mode: Literal["local", "host", "ray", "auto"] = "auto"
    plugin_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    generate_sample_data: bool = True
    shutdown_timeout_s: float = Field(10.0, ge=0, le=600)
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300)
    sse_min_interval_s: float = Field(0.25, ge=0, le=60)
    instance_lease_s: float = Field(15.0, gt=0, le=3600)
    auth: Literal["auto", "required", "off"] = "auto"
    insecure_no_auth: bool = False
    metrics_public: bool = False
    hosts: Annotated[tuple[str, ...], NoDecode] = ()
    shared_secret: str | None = Field(
        None, validation_alias=AliasChoices("MODELYARD_SHARED_SECRET", "shared_secret")
    )
    shared_secrets: Annotated[tuple[str, ...], NoDecode] = ()
    public_url: str | None = None
    host_lease_s: float = Field(30.0, gt=0, le=3600)
    host_health_interval_s: float = Field(5.0, gt=0, le=600)
    host_health_timeout_s: float = Field(2.0, gt=0, le=60)
    host_request_timeout_s: float = Field(10.0, gt=0, le=600)
    host_transfer_timeout_s: float = Field(300.0, gt=0, le=7200)
    host_poll_initial_s: float = Field(1.0, gt=0, le=60)
    host_poll_max_s: float = Field(5.0, gt=0, le=600)
    host_result_pull_delay_s: float = Field(3.0, ge=0, le=600)
    callback_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    checkpoint_max_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        description="The largest training checkpoint a host may ship (MODELYARD_MAX_UPLOAD_BYTES applies too).",
    )
    inline_model_max_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_model_bytes: int = Field(4 * 1024**3, ge=1024)
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Automatic retries of an infrastructure fault (host lost, Ray job lost, backend restart).",
    )
    cancel_grace_s: float = Field(15.0, ge=0, le=3600)
    sweep_max_trials: int = Field(1000, ge=1, le=100_000)
    sweep_poll_interval_s: float = Field(5.0, gt=0, le=600)
    ray_address: str | None = None
    ray_entrypoint: str = Field("modelyard", min_length=1)
    ray_commands_dir: str | None = None
    ray_health_interval_s: float = Field(5.0, gt=0, le=600)
    ray_request_timeout_s: float = Field(5.0, gt=0, le=600)
    ray_poll_s: float = Field(1.0, gt=0, le=60)
    ray_lease_s: float = Field(30.0, gt=0, le=3600)
    ray_job_token_ttl_s: float = Field(86400.0, ge=60, le=30 * 86400)

    @field_validator("plugin_allowlist", "hosts", "shared_secrets", mode="before")
    @classmethod
    def _split_allowlist(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("shared_secret")
    @classmethod
    def _usable_secret(cls, value: str | None) -> str | None:
        return check_secrets([value])[0] if value else value

    @field_validator("shared_secrets")
    @classmethod
    def _usable_secrets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_secrets(value))

    @field_validator("auth", mode="before")
    @classmethod
    def _lower_auth(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

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

    @field_validator("hosts")
    @classmethod
    def _host_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"host {url!r} is not a URL; write it as http://address:5002")
        return tuple(dict.fromkeys(url.rstrip("/") for url in value))

    @field_validator("ray_address")
    @classmethod
    def _ray_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not the Ray Jobs API URL; write it as http://head-address:8265")
        return value.rstrip("/")

    @property
    def logs_dir(self) -> Path:
        return self.runs_dir / "operation-logs"

    @property
    def secrets(self) -> list[str]:
        """Every shared secret, the rotation list first; empty means host traffic is unsigned."""
        ordered = [*self.shared_secrets, self.shared_secret or ""]
        return list(dict.fromkeys(s.strip() for s in ordered if s and s.strip()))

    @property
    def backend_url(self) -> str:
        """The base URL hosts call back to: MODELYARD_PUBLIC_URL, else this server's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        address = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{address}:{self.port}"


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
            if field.startswith(ENV_PREFIX):
                field = field.removeprefix(ENV_PREFIX).lower()
            # A secret is never echoed back: the message ends up in logs and terminals.
            got = "" if "secret" in field else f" (got {error.get('input')!r})"
            problems.append(f"{_env_name(field)}: {error['msg']}{got}")
        raise SettingsError("invalid settings: " + "; ".join(problems), problems=problems) from exc
