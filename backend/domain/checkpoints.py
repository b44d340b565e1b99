"""Training checkpoints a host shipped: what was announced for one upload, and what is kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShippedCheckpoint:
    """What a host announced for one checkpoint upload (signed with the request)."""

    session_id: str
    epoch: int
    sha256: str
    size: int


@dataclass(frozen=True)
class StoredCheckpoint:
    """The newest checkpoint kept for an operation: a re-dispatched training resumes from it."""

    path: Path
    epoch: int
    sha256: str
    size: int
    session_id: str
    received_at: str
