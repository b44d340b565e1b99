"""Feature standardisation fitted on the training split only, so no statistic leaks from val/test."""

from __future__ import annotations

import numpy as np


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[list[np.ndarray], dict[str, list[float]]]:
    """Scale ``train`` and every other split with the mean and std of ``train`` alone.

    Constant columns keep std 1 (no division by zero); NaN left in any split becomes the train mean (0).
    Returns the scaled arrays in the order given, and ``{"mean": [...], "std": [...]}``.
    """
    train64 = np.asarray(train, dtype=np.float64)
    present = ~np.isnan(train64)
    counts = present.sum(axis=0)
    safe_counts = np.maximum(counts, 1)
    mean = np.where(present, train64, 0.0).sum(axis=0) / safe_counts
    variance = (np.where(present, train64 - mean, 0.0) ** 2).sum(axis=0) / safe_counts
    std = np.sqrt(variance)
    std[(std < 1e-8) | (counts == 0)] = 1.0
    scaled = []
    for split in (train, *others):
        z = (np.asarray(split, dtype=np.float64) - mean) / std
        scaled.append(np.nan_to_num(z, nan=0.0).astype(np.float32))
    return scaled, {"mean": mean.tolist(), "std": std.tolist()}
