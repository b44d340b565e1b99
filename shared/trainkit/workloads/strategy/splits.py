"""Chronological train / validation / test split, and class weights for imbalanced labels.

The sets are contiguous and in time order (train, then val, then test), so the model is always
evaluated on candles later than any it learned from. ``gap`` candles are dropped at each boundary:
with forward-looking labels of horizon ``h``, ``gap=h`` keeps the last training labels from peeking
into the validation period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.trainkit.errors import ConfigError, DataError


@dataclass(frozen=True)
class SplitIndices:
    """Slices into the (time-ordered) rows: ``X[split.train]``."""

    train: slice
    val: slice
    test: slice

    def sizes(self) -> dict[str, int]:
        return {name: s.stop - s.start for name, s in self.items()}

    def items(self) -> list[tuple[str, slice]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def time_split(n_rows: int, train: float, val: float, test: float, gap: int = 0) -> SplitIndices:
    """Split ``n_rows`` rows into fractions; a set left empty raises :class:`DataError`."""
    fractions = {"train": train, "val": val, "test": test}
    for name, value in fractions.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value < 1):
            raise ConfigError(
                f"split.{name} must be a fraction between 0 and 1, got {value!r}", field=f"split.{name}"
            )
    if abs(train + val + test - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1, got {train + val + test:g}", field="split")
    if gap < 0:
        raise ConfigError(f"gap must not be negative, got {gap}", field="gap")
    usable = n_rows - 2 * gap
    n_train = round(usable * train)
    n_val = round(usable * val)
    n_test = usable - n_train - n_val
    for name, size in (("train", n_train), ("val", n_val), ("test", n_test)):
        if size <= 0:
            raise DataError(
                f"the {name} set would be empty: {n_rows} rows (after warm-up and unlabelled rows"
                f"{f', minus 2 x gap {gap}' if gap else ''}) split {train:g}/{val:g}/{test:g} leave it "
                f"{max(size, 0)} rows; use more data (a longer date range) or a larger {name} fraction",
                field=f"split.{name}",
                rows=n_rows,
            )
    val_start = n_train + gap
    test_start = val_start + n_val + gap
    return SplitIndices(slice(0, n_train), slice(val_start, val_start + n_val), slice(test_start, n_rows))


def class_weights(labels: npt.ArrayLike, n_classes: int) -> npt.NDArray[np.float64]:
    """Inverse-frequency weights ``n / (n_present * count)``: a balanced set gets all ones.

    An absent class gets 1.0 (it has no samples, so its weight never enters a loss, but it stays finite).
    """
    y = np.asarray(labels)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}", field="labels")
    counts = np.bincount(y.astype(np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes, dtype=np.float64)
    if present.any():
        weights[present] = y.size / (present.sum() * counts[present])
    return weights
