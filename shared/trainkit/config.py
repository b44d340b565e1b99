"""Consumer contract: what a user configures (:class:`TrainerConfig`) and gets back (:class:`FitResult`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from shared.trainkit.errors import ConfigError
from shared.trainkit.spi import EpochMetrics

Precision = Literal["32", "bf16-mixed", "16-mixed"]
DeviceRequest = Literal["auto", "cpu", "cuda", "mps"]
PRECISIONS: tuple[str, ...] = ("32", "bf16-mixed", "16-mixed")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


class StopReason(StrEnum):
    MAX_EPOCHS = "max_epochs"
    EARLY_STOPPING = "early_stopping"
    TIME_LIMIT = "time_limit"


@dataclass(frozen=True)
class TrainerConfig:
    """Validated once, at construction: every bad value raises :class:`ConfigError` naming the field."""

    max_epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 32
    accumulate_grad_batches: int = 1
    precision: Precision = "32"
    device: DeviceRequest = "auto"
    seed: int = 42
    gradient_clip_val: float | None = None
    deterministic: bool = False

    def __post_init__(self) -> None:
        _require_int(self, "max_epochs", 1, 100_000)
        _require_int(self, "batch_size", 1, 1_000_000)
        _require_int(self, "accumulate_grad_batches", 1, 10_000)
        _require_int(self, "seed", 0, 2**32 - 1)
        lr = self.learning_rate
        if (
            isinstance(lr, bool)
            or not isinstance(lr, int | float)
            or not math.isfinite(lr)
            or not 0 < lr <= 10
        ):
            raise ConfigError(
                f"learning_rate must be a number in (0, 10], got {lr!r}", field="learning_rate", value=lr
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
                field="precision",
                value=self.precision,
            )
        if self.device not in DEVICES:
            raise ConfigError(
                f"device must be one of {', '.join(DEVICES)}, got {self.device!r}",
                field="device",
                value=self.device,
            )
        clip = self.gradient_clip_val
        if clip is not None and (
            isinstance(clip, bool)
            or not isinstance(clip, int | float)
            or not math.isfinite(clip)
            or clip <= 0
        ):
            raise ConfigError(
                f"gradient_clip_val must be a positive number or null, got {clip!r}",
                field="gradient_clip_val",
                value=clip,
            )
        if not isinstance(self.deterministic, bool):
            raise ConfigError(
                "deterministic must be true or false", field="deterministic", value=self.deterministic
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require_int(config: TrainerConfig, name: str, low: int, high: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}", field=name, value=value
        )


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns. Epochs are numbered from 1. ``best_epoch`` follows ``val_loss``
    (``train_loss`` when nothing was validated); ``best_val_loss`` is None without validation, and
    ``best_train_loss`` is the lowest training loss of the fit."""

    epochs_trained: int
    best_val_loss: float | None
    best_epoch: int | None
    stop_reason: StopReason
    device: str
    duration_s: float
    history: list[EpochMetrics] = field(default_factory=list)
    best_train_loss: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "epochs_trained": self.epochs_trained,
            "best_val_loss": self.best_val_loss,
            "best_train_loss": self.best_train_loss,
            "best_epoch": self.best_epoch,
            "stop_reason": str(self.stop_reason),
            "device": self.device,
            "duration_s": self.duration_s,
            "history": [m.as_dict() for m in self.history],
        }
