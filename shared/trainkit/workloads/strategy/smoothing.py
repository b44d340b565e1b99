"""Exponential smoothing without a Python loop over samples: the recursion shared by EMA, Wilder, MACD.

Every recursive indicator here is the first-order linear recurrence ``y[i] = decay * y[i-1] + u[i]``,
an IIR filter with numerator ``[scale]`` and denominator ``[1, -decay]``. ``scipy.signal.lfilter`` runs
it in one compiled pass, in the same order of operations as the plain loop (and as TA-Lib's C loop),
so the results agree with both to the last few ulps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

FloatArray = npt.NDArray[np.float64]


def exponential_filter(u: FloatArray, decay: float, initial: float = 0.0, scale: float = 1.0) -> FloatArray:
    """Return ``y`` with ``y[i] = decay * y[i-1] + scale * u[i]`` and ``y[-1] = initial``; ``0 <= decay < 1``."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    u = np.asarray(u, dtype=np.float64)
    if u.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    # The filter's state before the first sample is the carried term ``decay * y[-1]``.
    state = np.array([decay * initial], dtype=np.float64)
    filtered, _ = lfilter([scale], [1.0, -decay], u, zi=state)
    return np.asarray(filtered, dtype=np.float64)


def exponential_filter_reference(u: FloatArray, decay: float, initial: float = 0.0) -> FloatArray:
    """The plain loop ``exponential_filter`` must agree with (tests and documentation only)."""
    out = np.empty(len(u), dtype=np.float64)
    prev = initial
    for i, value in enumerate(u):
        prev = decay * prev + float(value)
        out[i] = prev
    return out
