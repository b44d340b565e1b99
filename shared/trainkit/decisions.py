"""Training decisions as pure functions over metric histories: when to stop, checkpoint, evaluate,
lower the learning rate; whether training plateaued or overfits.

No torch here (an import-linter contract enforces it): every rule is unit-tested on lists of floats,
and the callbacks (:mod:`shared.trainkit.callbacks`) call these functions instead of re-implementing
them, so there is one source of truth for each rule.

Conventions: ``mode`` is ``"min"`` (lower is better, losses) or ``"max"`` (accuracy). ``None`` and NaN
values in a history mean "not measured" / "broken" and never count as an improvement. Epochs are
numbered from 1, as everywhere in trainkit; indices into a history (``best_index``) count from 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Mode = Literal["min", "max"]
MODES: tuple[str, ...] = ("min", "max")


def is_improvement(
    current: float | None, best: float | None, min_delta: float = 0.0, mode: Mode = "min"
) -> bool:
    """True when ``current`` beats ``best`` by more than ``min_delta`` (any real value beats no best)."""
    _check_mode(mode)
    if current is None or math.isnan(current):
        return False
    if best is None or math.isnan(best):
        return True
    if mode == "min":
        return current < best - min_delta
    return current > best + min_delta


def epochs_without_improvement(
    values: Sequence[float | None], min_delta: float = 0.0, mode: Mode = "min"
) -> int:
    """How many of the trailing values failed to improve on the best value before them."""
    best: float | None = None
    stale = 0
    for value in values:
        if is_improvement(value, best, min_delta, mode):
            best, stale = value, 0
        else:
            stale += 1
    return stale


def best_index(values: Sequence[float | None], mode: Mode = "min") -> int | None:
    """Index of the best value (the first one on ties), or None when no value is usable."""
    best: float | None = None
    index: int | None = None
    for i, value in enumerate(values):
        if is_improvement(value, best, 0.0, mode):
            best, index = value, i
    return index


def should_stop_early(
    values: Sequence[float | None], patience: int, min_delta: float = 0.0, mode: Mode = "min"
) -> bool:
    """Stop once ``patience`` consecutive epochs brought no improvement. ``patience <= 0`` disables."""
    if patience <= 0:
        return False
    return epochs_without_improvement(values, min_delta, mode) >= patience


def should_checkpoint(values: Sequence[float | None], min_delta: float = 0.0, mode: Mode = "min") -> bool:
    """True when the latest value is the best so far (so a "best" checkpoint is due)."""
    if not values:
        return False
    return is_improvement(values[-1], _best(values[:-1], mode), min_delta, mode)


def should_evaluate(epoch: int, every_n: int) -> bool:
    """Validate after epoch ``epoch`` (from 1) when it closes a block of ``every_n`` epochs."""
    if every_n < 1:
        raise ValueError(f"every_n must be at least 1, got {every_n}")
    if epoch < 1:
        raise ValueError(f"epochs are numbered from 1, got {epoch}")
    return epoch % every_n == 0


def next_learning_rate(
    values: Sequence[float | None],
    current_lr: float,
    patience: int,
    factor: float,
    min_lr: float = 0.0,
    min_delta: float = 0.0,
    mode: Mode = "min",
) -> float | None:
    """Reduce-on-plateau: the new learning rate, or None to keep ``current_lr``.

    The rate drops by ``factor`` when ``patience`` epochs passed without improvement, and again after
    every further ``patience`` stale epochs (so the rule needs no state beyond the history). It never
    goes below ``min_lr``; when already there, the answer is None.
    """
    if patience < 1:
        raise ValueError(f"patience must be at least 1, got {patience}")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be in (0, 1), got {factor}")
    stale = epochs_without_improvement(values, min_delta, mode)
    if stale == 0 or stale % patience != 0:
        return None
    new_lr = max(current_lr * factor, min_lr)
    return new_lr if new_lr < current_lr else None


def cosine_learning_rate(epoch: int, t_max: int, base_lr: float, eta_min: float = 0.0) -> float:
    """Cosine annealing: the rate for the epoch after epoch ``epoch`` (from 1; 0 gives ``base_lr``, the
    rate of the first epoch) in a ``t_max``-epoch cycle."""
    if t_max < 1:
        raise ValueError(f"t_max must be at least 1, got {t_max}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    progress = min(epoch, t_max) / t_max
    return eta_min + (base_lr - eta_min) * (1.0 + math.cos(math.pi * progress)) / 2.0


def detect_plateau(values: Sequence[float | None], window: int = 5, tolerance: float = 1e-3) -> bool:
    """True when the last ``window`` values vary by at most ``tolerance`` relative to their mean."""
    recent = [v for v in values[-window:] if v is not None and math.isfinite(v)] if window > 0 else []
    if window < 2 or len(recent) < window:
        return False
    spread = max(recent) - min(recent)
    scale = max(abs(sum(recent) / len(recent)), 1e-12)
    return spread / scale <= tolerance


def detect_overfitting(
    train_losses: Sequence[float | None], val_losses: Sequence[float | None], window: int = 5
) -> bool:
    """True when, over the last ``window`` epochs, training loss trends down and validation loss up."""
    if window < 2:
        return False
    train = _finite_tail(train_losses, window)
    val = _finite_tail(val_losses, window)
    if train is None or val is None:
        return False
    return _slope(train) < 0.0 < _slope(val)


@dataclass(frozen=True)
class TrainingAnalysis:
    """A summary verdict over a whole history (what the dashboard and the result report).

    ``best_epoch`` (from 1) is the best epoch by ``monitor``; ``best_val_loss`` is the lowest validation
    loss, None when nothing was validated (a training loss is never reported as one); ``best_train_loss``
    is the lowest training loss."""

    epochs: int
    best_epoch: int | None
    best_val_loss: float | None
    monitor: str
    plateau: bool
    overfitting: bool
    best_train_loss: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def analyze(
    history: Sequence[Mapping[str, float | None]], window: int = 5, plateau_tolerance: float = 1e-3
) -> TrainingAnalysis:
    """Best epoch by ``val_loss`` (``train_loss`` when nothing was validated), plateau and overfitting.

    A row's ``epoch`` numbers it; rows without one are numbered by position, from 1."""
    train = [row.get("train_loss") for row in history]
    val = [row.get("val_loss") for row in history]
    validated = any(v is not None for v in val)
    monitor, series = ("val_loss", val) if validated else ("train_loss", train)
    index = best_index(series, "min")
    epoch_value = None if index is None else history[index].get("epoch")
    best_epoch = (index + 1 if index is not None else None) if epoch_value is None else int(epoch_value)
    return TrainingAnalysis(
        epochs=len(history),
        best_epoch=best_epoch,
        best_val_loss=_best(val, "min") if validated else None,
        monitor=monitor,
        plateau=detect_plateau(series, window, plateau_tolerance),
        overfitting=validated and detect_overfitting(train, val, window),
        best_train_loss=_best(train, "min"),
    )


def _best(values: Sequence[float | None], mode: Mode) -> float | None:
    index = best_index(values, mode)
    return None if index is None else values[index]


def _finite_tail(values: Sequence[float | None], window: int) -> list[float] | None:
    tail = list(values[-window:])
    if len(tail) < window or any(v is None or not math.isfinite(v) for v in tail):
        return None
    return [float(v) for v in tail if v is not None]


def _slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2 …"""
    n = len(values)
    mean_x = (n - 1) / 2.0
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
