"""Host service settings: ``MODELYARD_HOST_*`` environment variables, plus the shared secret(s).

| variable | default | meaning |
|---|---|---|
| MODELYARD_HOST_BIND / _PORT | 127.0.0.1 / 5002 | where uvicorn listens |
| MODELYARD_HOST_WORK_DIR | var/host | sessions, results and the dataset cache |
| MODELYARD_HOST_COMMANDS_DIR | {work_dir}/commands | this host's command templates (the only ones it runs) |
| MODELYARD_HOST_SAMPLE_COMMANDS | true | write the sample commands into an empty commands folder |
| MODELYARD_HOST_CAPACITY | 1 | trainings at once |
| MODELYARD_HOST_TRAINING_THREADS | cores - 1 (at least 1) | torch CPU threads of each training |
| MODELYARD_HOST_PUBLIC_URL | (none) | base URL the backend reaches this host at (for model URLs) |
| MODELYARD_SHARED_SECRET | (none) | HMAC secret shared with the backend (`whsec_<base64>` or any string) |
| MODELYARD_SHARED_SECRETS | (none) | several secrets, comma-separated, while rotating |
| MODELYARD_HOST_STOP_GRACE_S | 10 | graceful stop before terminate(), and again before kill() |
| MODELYARD_HOST_INLINE_MODEL_LIMIT_BYTES | 32 MiB | above it the model is streamed, not inlined |
| MODELYARD_HOST_CALLBACK_ATTEMPTS | 3 | result callback attempts |
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.handoff import DEFAULT_GZIP_LEVEL
from shared.contracts.signing import check_secrets


class HostSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_HOST_", extra="ignore", populate_by_name=True)

    bind: str = "127.0.0.1"
    port: int = Field(5002, ge=1, le=65535)
    work_dir: Path = Path("var/host")
    commands_dir: Path | None = None
    sample_commands: bool = True
    capacity: int = Field(1, ge=1, le=64)
    #: Torch CPU threads of each training; None: one fewer than the cores (at least one).
    training_threads: int | None = Field(None, ge=1, le=1024)
    public_url: str | None = None
    shared_secret: str | None = Field(
        None, validation_alias=AliasChoices("shared_secret", "MODELYARD_SHARED_SECRET")
    )
    shared_secrets: str | None = Field(
        None, validation_alias=AliasChoices("shared_secrets", "MODELYARD_SHARED_SECRETS")
    )
    signature_tolerance_s: int = Field(300, ge=1)
    max_request_bytes: int = Field(16 << 20, ge=1024)
    stop_grace_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(2.0, gt=0)
    poll_interval_s: float = Field(0.25, gt=0)
    progress_persist_interval_s: float = Field(2.0, gt=0)
    inline_model_limit_bytes: int = Field(32 << 20, ge=0)
    gzip_level: int = Field(DEFAULT_GZIP_LEVEL, ge=0, le=9)
    callback_attempts: int = Field(3, ge=1)
    callback_initial_wait_s: float = Field(1.0, ge=0)
    callback_max_wait_s: float = Field(30.0, ge=0)
    callback_timeout_s: float = Field(120.0, gt=0)
    download_timeout_s: float = Field(120.0, gt=0)
    retry_after_s: int = Field(5, ge=1)
    checkpoint_every_epochs: int = Field(1, ge=1, le=100_000)
    checkpoint_min_interval_s: float = Field(30.0, ge=0, le=86_400)
    checkpoint_poll_s: float = Field(1.0, gt=0, le=600)

    @field_validator("shared_secret")
    @classmethod
    def _usable_secret(cls, value: str | None) -> str | None:
        check_secrets([value.strip()] if value and value.strip() else [])
        return value

    @field_validator("shared_secrets")
    @classmethod
    def _usable_secrets(cls, value: str | None) -> str | None:
        check_secrets(_split(value))
        return value

    @property
    def secrets(self) -> list[str]:
        """Every configured secret, the rotation list first; empty means requests go unsigned."""
        single = [self.shared_secret.strip()] if self.shared_secret and self.shared_secret.strip() else []
        return list(dict.fromkeys([*_split(self.shared_secrets), *single]))

    @property
    def commands_folder(self) -> Path:
        """The commands folder: ``commands_dir``, else ``commands`` in the work dir."""
        return self.commands_dir if self.commands_dir is not None else self.work_dir / "commands"

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.bind)


def _split(value: str | None) -> list[str]:
    return [s.strip() for s in (value or "").replace(" ", ",").split(",") if s.strip()]


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
