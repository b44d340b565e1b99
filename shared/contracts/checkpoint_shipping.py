"""What a host and a Ray job share to ship a running training's checkpoints to the backend.

The training writes checkpoints into its checkpoint folder (the last two kept). Every ``poll_s`` the
shipper looks for a newer one than it last shipped (:func:`next_checkpoint`), holds it open (the training
may prune the file meanwhile; its bytes stay readable), describes it (:meth:`NextCheckpoint.describe`:
the upload's query, see :mod:`shared.contracts.host`) and streams it. Only the transport differs: the
host's signed async client (hashing on a worker thread), the Ray job's httpx client with its job token
(on a thread of its own). A refusal (4xx) counts the file as shipped (the next checkpoint may fix what
was refused); no answer or a 5xx is tried again at the next look.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.contracts.handoff import file_chunks, sha256_open_file
from shared.contracts.host import newest_checkpoint


@dataclass(frozen=True)
class CheckpointSettings:
    """How often a remote training (a host's, a Ray job's) writes checkpoints, and how often its shipper
    looks for a new one."""

    every_epochs: int = 1
    min_interval_s: float = 30.0
    poll_s: float = 1.0


@dataclass(frozen=True)
class NextCheckpoint:
    """The newest checkpoint not shipped yet, its label (epoch or step) and its open file."""

    path: Path
    label: int
    source: BinaryIO

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self, session_id: str) -> tuple[dict[str, str], int]:
        """The upload's query (``session_id``, ``epoch``: the label, ``sha256``, ``size``, ``name``) and the
        size. Reads the whole file (blocking: a caller on an event loop runs it on a thread) and leaves it
        at its start for the upload."""
        sha256, size = sha256_open_file(self.source)
        query = {
            "session_id": session_id,
            "epoch": str(self.label),
            "sha256": sha256,
            "size": str(size),
            "name": self.name,
        }
        return query, size

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes for a streamed upload."""
        return file_chunks(self.source)


@contextmanager
def next_checkpoint(folder: Path, shipped: str | None) -> Iterator[NextCheckpoint | None]:
    """The newest checkpoint in ``folder`` unless it is ``shipped`` (the name last counted as shipped),
    open until the block ends; None when nothing is new, or when the file was pruned before it could be
    opened (a newer one is there for the next look)."""
    found = newest_checkpoint(folder)
    if found is None or found[0].name == shipped:
        yield None
        return
    path, label = found
    try:
        source = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with source:
        yield NextCheckpoint(path, label, source)
