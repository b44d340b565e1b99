"""What the executor consumes and produces, and the ports it is handed (progress, persistence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.contracts.training import ProgressUpdate

ProgressCallback = Callable[[ProgressUpdate], None]


@dataclass(frozen=True)
class StagedModel:
    """Weights already in a file of their own, checked against ``sha256`` and ``size`` (a received
    model): the store takes the file over (a rename on the same file system) instead of writing bytes
    and hashing them again."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model ready to persist: ``model_bytes`` is a ``model.safetensors`` file with
    modelyard's header fields (:mod:`~shared.trainkit.model_file`; a ``model.pt`` checkpoint from an
    older host is stored under that name), empty for none, as for a command run; the dicts become ``config.json``, ``metrics.json``,
    ``features.json`` and ``metadata.json``; ``files`` maps relative paths to files on disk copied in
    under ``files/`` (a command's artefacts). ``staged_model``, when given, is the weights file in
    place of ``model_bytes`` (which is then empty)."""

    strategy: str
    name: str
    model_bytes: bytes
    config: dict[str, Any]
    metrics: dict[str, Any]
    features: dict[str, Any]
    metadata: dict[str, Any]
    files: Mapping[str, Path] = field(default_factory=dict)
    staged_model: StagedModel | None = None


@dataclass(frozen=True)
class ModelRef:
    """Where a stored model version lives."""

    strategy: str
    name: str
    version: int
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "name": self.name, "version": self.version, "path": self.path}


class ModelSink(Protocol):
    """Persists a finished model. The backend stores it locally; a host keeps it for the hand-off."""

    def save(self, artifact: ModelArtifact) -> ModelRef: ...


@dataclass
class TrainingResult:
    """The outcome of one executed training."""

    model: ModelRef | None
    device: str
    test_metrics: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_val_loss: float | None
    epochs_trained: int
    stop_reason: str
    feature_importance: dict[str, float]
    duration_s: float
    decisions: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Per timer name (``step.<phase>``, ``epoch``, ``command.*``): count, total, mean, p50, p95, max.
    telemetry: dict[str, dict[str, float | int]] = field(default_factory=dict)
    #: Command runs: what the program did (exit code, lines, last metrics); empty for model workloads.
    command: dict[str, Any] = field(default_factory=dict)
    #: The epoch of the training checkpoint this execution resumed from (0: from scratch).
    resumed_from_epoch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.as_dict() if self.model is not None else None,
            "device": self.device,
            "test_metrics": self.test_metrics,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "epochs_trained": self.epochs_trained,
            "stop_reason": self.stop_reason,
            "feature_importance": self.feature_importance,
            "duration_s": self.duration_s,
            "decisions": self.decisions,
            "warnings": self.warnings,
            "telemetry": self.telemetry,
            **({"command": self.command} if self.command else {}),
            **({"resumed_from_epoch": self.resumed_from_epoch} if self.resumed_from_epoch else {}),
        }
