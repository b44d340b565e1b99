"""Training checkpoints a host shipped: what was announced for one upload, and what is kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.contracts.host import CheckpointKind, checkpoint_label, epoch_checkpoint_name


@dataclass(frozen=True)
class ShippedCheckpoint:
    """What a host announced for one checkpoint upload (signed with the request): the file's name, one of
    the two forms of :data:`shared.contracts.host.CHECKPOINT_NAME` (no path parts), and its label, the
    epoch (or a command checkpoint's step) that name carries. ValueError for any other name or label."""

    session_id: str
    epoch: int
    sha256: str
    size: int
    name: str = ""  # empty: trainkit's epoch form of ``epoch``

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", epoch_checkpoint_name(self.epoch))
        label = checkpoint_label(self.name)
        if label is None:
            raise ValueError(
                f"{self.name!r} is not a checkpoint file name (epoch-NNNNNN.ckpt or step-NNNNNNNNN-<file>, "
                "letters, digits, '.', '_' and '-' only)"
            )
        if label[1] != self.epoch:
            raise ValueError(f"{self.name!r} carries the label {label[1]}, not {self.epoch}")

    @property
    def kind(self) -> CheckpointKind:
        label = checkpoint_label(self.name)
        assert label is not None  # checked when made
        return label[0]


@dataclass(frozen=True)
class StoredCheckpoint:
    """The newest checkpoint kept for an operation: a re-dispatched training resumes from it."""

    path: Path
    epoch: int
    sha256: str
    size: int
    session_id: str
    received_at: str
