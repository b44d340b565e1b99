"""What the store reports about its models: one summary per model, one record per version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """One stored version. ``size_bytes`` counts every file in it; ``metrics`` is its ``metrics.json``."""

    strategy: str
    name: str
    version: int
    path: str
    created_at: datetime
    is_latest: bool
    size_bytes: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "created_at": self.created_at.isoformat(),
            "is_latest": self.is_latest,
            "size_bytes": self.size_bytes,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class ModelSummary:
    """One model (a strategy and name) with ``versions`` stored; ``updated_at`` is its latest's time."""

    strategy: str
    name: str
    latest_version: int
    versions: int
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "name": self.name,
            "latest_version": self.latest_version,
            "versions": self.versions,
            "updated_at": self.updated_at.isoformat(),
        }
