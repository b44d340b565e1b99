"""Exponential smoothing without a Python loop over samples: the recursion shared by EMA, Wilder, MACD.

Every recursive indicator here is the first-order linear recurrence ``y[i] = decay * y[i-1] + u[i]``.
Written out, ``y[s+j] = decay**(j+1) * y[s-1] + sum_k decay**(j-k) * u[s+k]``, so inside a block of
``B`` samples it is a scaled cumulative sum, and only the block ends carry over to the next block. That
carry is the same recurrence again (with ``decay**B``) on ``n / B`` values, solved the same way.

``B`` keeps ``decay**-B`` below ``e**100`` so the scaled sums neither overflow nor lose the newest
samples; the rounding error stays of the order of ``B * eps * max|u| / (1 - decay)``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Largest exponent ``-B * ln(decay)`` a block may span (``e**100`` ≈ 1e43, far from overflow).
_MAX_LOG_SPAN = 100.0
_MAX_BLOCK = 1024
#: Below this, ``decay * y[i-1]`` is under float64 resolution of any realistic ``y`` and is dropped.
_NEGLIGIBLE_DECAY = 1e-18
#: Series this short are cheaper to run through the plain loop (and it ends the recursion).
_SHORT = 32


def exponential_filter(u: FloatArray, decay: float, initial: float = 0.0, scale: float = 1.0) -> FloatArray:
    """Return ``y`` with ``y[i] = decay * y[i-1] + scale * u[i]`` and ``y[-1] = initial``; ``0 <= decay < 1``."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    u = np.asarray(u, dtype=np.float64)
    n = u.shape[0]
    if n <= _SHORT:
        return exponential_filter_reference(u * scale, decay, initial)
    if decay < _NEGLIGIBLE_DECAY:
        out = u * scale
        out[0] += decay * initial
        return out
    block = int(min(_MAX_BLOCK, max(2.0, _MAX_LOG_SPAN // -math.log(decay))))
    block = min(block, n // 2)
    n_blocks, full = -(-n // block), n // block * block
    steps = np.arange(block, dtype=np.float64)
    shrink = decay**steps
    growth = scale * decay**-steps  # at most e**100 (times scale)

    work = np.empty(n_blocks * block, dtype=np.float64)
    rows = work.reshape(n_blocks, block)
    np.multiply(u[:full].reshape(-1, block), growth, out=rows[: full // block])
    if full < n:  # the last, partial block: pad with zeros
        rows[-1] = 0.0
        rows[-1, : n - full] = u[full:] * growth[: n - full]
    np.cumsum(rows, axis=1, out=rows)
    # rows * shrink would be each block's response to its own inputs, as if it started from zero; the
    # value at each block's end is carried into the next: the same recurrence with decay**B.
    ends = exponential_filter(rows[:, -1] * shrink[-1], decay**block, initial)
    carried = np.empty(n_blocks, dtype=np.float64)
    carried[0] = initial
    carried[1:] = ends[:-1]
    # y[s+j] = decay**j * (cumsum[j] + decay * carried): add the carry before scaling, in place.
    rows += (carried * decay)[:, None]
    rows *= shrink
    return work[:n]


def exponential_filter_reference(u: FloatArray, decay: float, initial: float = 0.0) -> FloatArray:
    """The plain loop ``exponential_filter`` must agree with (tests and documentation only)."""
    out = np.empty(len(u), dtype=np.float64)
    prev = initial
    for i, value in enumerate(u):
        prev = decay * prev + float(value)
        out[i] = prev
    return out
