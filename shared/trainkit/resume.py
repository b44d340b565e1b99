"""What exact resume needs beyond weights and optimizer: random states, loader states, and finding the
newest training checkpoint that still validates.

A training checkpoint is a file ``epoch-NNNNNN.ckpt`` in the checkpoint format of
:mod:`shared.trainkit.checkpoint`, written by :class:`~shared.trainkit.callbacks.TrainingCheckpoints`.
Its ``extra`` carries the keys of :data:`TRAINING_KEYS` (the trainer's counters, history, optimizer,
callback states, random states) so a fit resumed from it is the same fit as one that never stopped.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from shared.contracts.host import epoch_checkpoint_name
from shared.trainkit.checkpoint import Checkpoint, load_checkpoint
from shared.trainkit.errors import CheckpointError

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^epoch-(\d{6})\.ckpt$")
#: What a checkpoint's ``extra`` must hold to resume a fit from it.
TRAINING_KEYS: tuple[str, ...] = ("epoch", "global_step", "history", "optimizer", "callbacks", "random")


#: The name of epoch ``n``'s checkpoint; one definition with the wire's (a host or a Ray job ships it).
checkpoint_name = epoch_checkpoint_name


@runtime_checkable
class StatefulLoader(Protocol):
    """A train loader whose shuffling state round-trips through checkpoints (``TensorBatches`` is one)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def capture_random_state(generator: torch.Generator | None) -> dict[str, Any]:
    """The process-wide RNG states (torch CPU and CUDA, numpy, python) and the fit's generator."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    python_version, python_internal, python_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": python_version, "internal": list(python_internal), "gauss": python_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_random_state(state: dict[str, Any], generator: torch.Generator | None) -> None:
    """Put back what :func:`capture_random_state` captured (a CUDA state only where CUDA is present)."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def training_checkpoints(folder: Path) -> list[Path]:
    """The training checkpoints in ``folder``, newest (highest epoch) first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


@dataclass
class ResumePoint:
    """The checkpoint a fit resumes from (None: from scratch) and what was skipped on the way, and why."""

    checkpoint: Checkpoint | None
    path: Path | None
    rejected: list[str] = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return 0 if self.checkpoint is None else int(self.checkpoint.extra["epoch"])


def find_resume_point(source: Path | str, *, model_class: str, config_hash: str) -> ResumePoint:
    """Load the newest valid training checkpoint: ``source`` itself when it is a file (then the older
    ones beside it), or the newest of a folder. Each invalid one (corrupt, truncated, foreign, another
    model or configuration) is skipped with its reason in ``rejected``; none valid: from scratch."""
    point = ResumePoint(checkpoint=None, path=None)
    for path in _candidates(Path(source)):
        try:
            checkpoint = load_checkpoint(
                path, expected_model_class=model_class, expected_config_hash=config_hash
            )
            _require_training_state(checkpoint, path)
        except CheckpointError as exc:
            point.rejected.append(exc.message)
            logger.warning("not resuming from %s: %s", path, exc.message)
            continue
        point.checkpoint, point.path = checkpoint, path
        return point
    return point


def _candidates(source: Path) -> Iterable[Path]:
    if source.is_dir():
        return training_checkpoints(source)
    older = [p for p in training_checkpoints(source.parent) if p.name < source.name]
    return [source, *older]


def _require_training_state(checkpoint: Checkpoint, path: Path) -> None:
    missing = [key for key in TRAINING_KEYS if key not in checkpoint.extra]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} holds no training state ({', '.join(missing)} missing); it can be loaded "
            "as a model but not resumed from",
            path=str(path),
        )
    if not isinstance(checkpoint.extra["epoch"], int) or checkpoint.extra["epoch"] < 1:
        raise CheckpointError(f"checkpoint {path} has no valid epoch counter", path=str(path))
