"""Fuzzy memberships: how much a value belongs to a set such as "RSI oversold", from 0 to 1.

A trapezoid ``[a, b, c, d]`` is 0 up to ``a``, rises linearly to 1 at ``b``, stays 1 up to ``c`` and
falls linearly to 0 at ``d``; a triangle ``[a, b, c]`` is the trapezoid ``[a, b, b, c]``. Equal
neighbours make a vertical edge, so ``[0, 0, 20, 30]`` is 1 from 0 to 20 (a left shoulder). NaN in,
NaN out (the warm-up rows, dropped later).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class FuzzySetLike(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def parameters(self) -> list[float]: ...


def trapezoid_points(fuzzy_set: FuzzySetLike) -> tuple[float, float, float, float]:
    p = [float(v) for v in fuzzy_set.parameters]
    if fuzzy_set.type == "triangular":
        return p[0], p[1], p[1], p[2]
    return p[0], p[1], p[2], p[3]


def trapezoidal(x: FloatArray, points: Sequence[float]) -> FloatArray:
    """Membership of each value of ``x`` in the trapezoid ``points = (a, b, c, d)``."""
    a, b, c, d = points
    # min(rising edge, falling edge) clipped to [0, 1], in place; NaN propagates through each step.
    # An edge of zero width is a step; if both are, NaN must be put back by hand.
    rising = (x - a) * (1.0 / (b - a)) if b > a else np.where(x >= a, 1.0, 0.0)
    falling = (d - x) * (1.0 / (d - c)) if d > c else np.where(x <= d, 1.0, 0.0)
    np.minimum(rising, falling, out=rising)
    np.clip(rising, 0.0, 1.0, out=rising)
    if b == a and d == c:
        rising[np.isnan(x)] = np.nan
    return rising


def membership(x: FloatArray, fuzzy_set: FuzzySetLike) -> FloatArray:
    return trapezoidal(np.asarray(x, dtype=np.float64), trapezoid_points(fuzzy_set))
