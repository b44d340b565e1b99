"""Rollups of a series of values: percentiles, and bounded duration statistics (no torch)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

#: Rollup values are durations in seconds; microseconds are the finest resolution worth reporting.
_DIGITS = 6


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


class DurationRollup:
    """count, total, mean, p50, p95 and max of durations, in bounded memory.

    count, total, mean and max are exact. The percentiles are exact while at most ``max_samples``
    durations were added; beyond that they are estimated from a uniform reservoir sample of
    ``max_samples`` durations (Vitter's algorithm R). Not thread-safe: the owner serializes ``add``.
    """

    __slots__ = ("_rng", "count", "max_s", "max_samples", "samples", "total_s")

    def __init__(self, max_samples: int = 100_000, *, rng: random.Random | None = None) -> None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        self.max_samples = max_samples
        self.count = 0
        self.total_s = 0.0
        self.max_s = -math.inf
        self.samples: list[float] = []
        self._rng = rng or random.Random(0)

    def add(self, duration_s: float) -> None:
        self.count += 1
        self.total_s += duration_s
        self.max_s = max(self.max_s, duration_s)
        if len(self.samples) < self.max_samples:
            self.samples.append(duration_s)
            return
        slot = self._rng.randrange(self.count)
        if slot < self.max_samples:
            self.samples[slot] = duration_s

    def copy(self) -> DurationRollup:
        """A snapshot, so the (sorting) rollup can be computed outside the owner's lock."""
        twin = DurationRollup(self.max_samples, rng=self._rng)
        twin.count, twin.total_s, twin.max_s, twin.samples = (
            self.count,
            self.total_s,
            self.max_s,
            [*self.samples],
        )
        return twin

    def as_dict(self) -> dict[str, float | int]:
        if not self.count:
            return {"count": 0, "total_s": 0.0, "mean_s": 0.0, "p50_s": 0.0, "p95_s": 0.0, "max_s": 0.0}
        ordered = sorted(self.samples)
        return {
            "count": self.count,
            "total_s": round(self.total_s, _DIGITS),
            "mean_s": round(self.total_s / self.count, _DIGITS),
            "p50_s": round(percentile(ordered, 50), _DIGITS),
            "p95_s": round(percentile(ordered, 95), _DIGITS),
            "max_s": round(self.max_s, _DIGITS),
        }
