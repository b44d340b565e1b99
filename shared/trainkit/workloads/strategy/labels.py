"""Labels: what the model should have done at each candle, BUY (0), HOLD (1) or SELL (2).

Labels look forward by nature; features never do (every feature at candle ``i`` reads candles
``<= i`` only). The last candles have no defined label, because their future is not in the data:
``make_labels`` returns labels for candles ``0 .. n_labelled - 1`` only, a prefix, so it is shorter
than the candles by exactly the undefined tail. ``align`` joins that prefix with a feature matrix
(which lost its warm-up head): the rows kept are those with both a feature row and a label.

- ``forward_return``: ``r = close[i + horizon] / close[i] - 1``; BUY if ``r >= buy_threshold``,
  SELL if ``r <= sell_threshold``, else HOLD. The last ``horizon`` candles are undefined.
- ``zigzag``: swing pivots are found on the close with ``threshold`` (a pivot high is confirmed once
  the close falls ``threshold`` below it, and vice versa). At candle ``i`` the next pivot ahead is at
  ``p``; ``r = close[p] / close[i] - 1``. BUY if ``r >= threshold`` (at least a threshold of the up
  swing remains), SELL if ``r <= -threshold``, else HOLD (the swing is nearly done). Candles from the
  last confirmed pivot on are undefined: the swing they belong to has not been confirmed yet.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.trainkit.errors import DataError
from shared.trainkit.workloads.strategy.features import FeatureMatrix
from shared.trainkit.workloads.strategy.schema import ForwardReturnLabels, LabelSpec, ZigzagLabels

BUY, HOLD, SELL = 0, 1, 2
CLASS_NAMES = ("BUY", "HOLD", "SELL")
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def make_labels(candles: pd.DataFrame, spec: LabelSpec) -> IntArray:
    """Labels of the first ``n_labelled`` candles (the undefined tail is dropped, see the module doc)."""
    close = candles["close"].to_numpy(dtype=np.float64)
    if isinstance(spec, ForwardReturnLabels):
        if len(close) <= spec.horizon:
            raise DataError(
                f"forward_return labels need more than horizon={spec.horizon} candles, got {len(close)}",
                field="labels.horizon",
            )
        change = close[spec.horizon :] / close[: -spec.horizon] - 1.0
        return _classify(change, spec.buy_threshold, spec.sell_threshold)
    assert isinstance(spec, ZigzagLabels)
    pivots = zigzag_pivots(close, spec.threshold)
    if len(pivots) < 2:
        raise DataError(
            f"zigzag threshold {spec.threshold:g} finds fewer than 2 swings in {len(close)} candles; "
            f"lower labels.threshold or use more data",
            field="labels.threshold",
        )
    last = pivots[-1]
    ahead = pivots[np.searchsorted(pivots, np.arange(last), side="right")]
    change = close[ahead] / close[:last] - 1.0
    return _classify(change, spec.threshold, -spec.threshold)


def _classify(change: FloatArray, buy: float, sell: float) -> IntArray:
    labels = np.full(len(change), HOLD, dtype=np.int64)
    labels[change >= buy] = BUY
    labels[change <= sell] = SELL
    return labels


def zigzag_pivots(close: FloatArray, threshold: float) -> IntArray:
    """Indices of confirmed swing highs and lows, alternating, in time order."""
    pivots: list[int] = []
    trend = 0  # 0 undecided, 1 up (tracking a high), -1 down (tracking a low)
    hi = lo = 0
    up, down = 1.0 + threshold, 1.0 - threshold
    prices = close.tolist()  # plain floats: this loop is the one place labels walk the candles
    for i, price in enumerate(prices):
        if trend >= 0 and price > prices[hi]:
            hi = i
        if trend <= 0 and price < prices[lo]:
            lo = i
        if trend >= 0 and price <= prices[hi] * down:
            pivots.append(hi)
            trend, lo = -1, i
        elif trend <= 0 and price >= prices[lo] * up:
            pivots.append(lo)
            trend, hi = 1, i
    return np.asarray(pivots, dtype=np.int64)


def align(features: FeatureMatrix, labels: IntArray) -> tuple[FeatureMatrix, IntArray]:
    """Rows that have both features and a label; ``features.first_row`` is their offset in the candles."""
    stop = len(labels) - features.first_row
    if stop <= 0:
        raise DataError(
            f"no candle has both features and a label: features start at candle {features.first_row}, "
            f"labels end at candle {len(labels)}; use more data or shorter warm-up / horizon",
        )
    kept = FeatureMatrix(
        values=features.values[:stop],
        names=features.names,
        index=features.index[:stop],
        first_row=features.first_row,
    )
    return kept, labels[features.first_row : features.first_row + stop]
