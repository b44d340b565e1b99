"""The feature matrix: fuzzy memberships of every declared set, plus a few scale-free raw features.

Column order: for each ``fuzzy_sets`` entry in file order, each of its sets (``rsi_14.oversold``),
then the raw features below. Nothing here looks ahead: row ``i`` reads candles ``<= i`` only.

Raw features (no price units, so one model can serve EURUSD at 1.10 and BTCUSD at 30,000):

- ``log_return_1``, ``log_return_5``: ``100 * ln(close / close[-k])``, recent momentum in %;
- ``range_pct``: ``100 * ln(high / low)``, the candle's span in %, a volatility proxy;
- ``close_location``: ``(close - low) / (high - low)``, where in its range the candle closed (0.5
  for a flat candle), a buying/selling pressure proxy;
- ``volume_ratio``: ``ln((volume + 1) / (mean volume of the last 20 candles + 1))``, unusual activity.

They are not standardised here: the trainer fits a normalisation on the training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.trainkit.errors import DataError
from shared.trainkit.workloads.strategy import indicators
from shared.trainkit.workloads.strategy.fuzzy import membership
from shared.trainkit.workloads.strategy.indicators import FloatArray, Prices
from shared.trainkit.workloads.strategy.schema import StrategyConfig

RAW_FEATURES = ("log_return_1", "log_return_5", "range_pct", "close_location", "volume_ratio")
_VOLUME_WINDOW = 20
#: Candles the raw features need before their first value (the volume ratio's window).
RAW_LOOKBACK = _VOLUME_WINDOW - 1


@dataclass(frozen=True)
class FeatureMatrix:
    """``values[j]`` describes candle ``first_row + j``, dated ``index[j]``."""

    values: npt.NDArray[np.float32]
    names: list[str]
    index: pd.DatetimeIndex
    first_row: int = 0

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=self.index, columns=self.names)


def warmup_rows(config: StrategyConfig) -> int:
    """Candles lost at the start: the longest indicator warm-up (or the raw features')."""
    return max([RAW_LOOKBACK, *(indicators.lookback(spec) for spec in config.indicators)])


def build_features(candles: pd.DataFrame, config: StrategyConfig) -> FeatureMatrix:
    """Features of every candle after the warm-up; :class:`DataError` when too few candles remain."""
    check_enough_candles(candles, config)
    prices = Prices.from_candles(candles)
    outputs = compute_indicators(prices, config)
    return assemble(candles, prices, fuzzy_memberships(outputs, config), config)


def check_enough_candles(candles: pd.DataFrame, config: StrategyConfig) -> None:
    warmup = warmup_rows(config)
    if len(candles) <= warmup:
        longest = max(config.indicators, key=indicators.lookback)
        raise DataError(
            f"strategy {config.name!r} needs at least {warmup + 1} candles ({longest.id} needs {warmup} "
            f"for its warm-up), got {len(candles)}; use a longer date range or shorter periods",
            field="candles",
            needed=warmup + 1,
            available=len(candles),
        )


def compute_indicators(prices: Prices, config: StrategyConfig) -> dict[str, FloatArray]:
    """Every output of every declared indicator, keyed by output id (NaN during warm-up)."""
    outputs: dict[str, FloatArray] = {}
    for spec in config.indicators:
        outputs.update(indicators.compute(prices, spec))
    return outputs


def fuzzy_memberships(outputs: dict[str, FloatArray], config: StrategyConfig) -> dict[str, FloatArray]:
    """Membership (0..1) of every declared fuzzy set, named ``{input_id}.{set_name}``, in file order."""
    return {
        f"{input_id}.{set_name}": membership(outputs[input_id], fuzzy_set)
        for input_id, sets in config.fuzzy_sets.items()
        for set_name, fuzzy_set in sets.items()
    }


def assemble(
    candles: pd.DataFrame, prices: Prices, memberships: dict[str, FloatArray], config: StrategyConfig
) -> FeatureMatrix:
    """Memberships then raw features, warm-up rows dropped, as one row-major float32 matrix."""
    warmup = warmup_rows(config)
    columns = {**memberships, **raw_features(prices)}
    names = list(columns)
    # Fill feature-major (contiguous writes), then one transposing copy to row-major.
    by_feature = np.empty((len(columns), len(prices) - warmup), dtype=np.float32)
    for j, column in enumerate(columns.values()):
        by_feature[j] = column[warmup:]
    values = np.ascontiguousarray(by_feature.T)
    _check_finite(values, names, candles.index[warmup:])
    return FeatureMatrix(
        values=values, names=names, index=pd.DatetimeIndex(candles.index[warmup:]), first_row=warmup
    )


def raw_features(p: Prices) -> dict[str, FloatArray]:
    log_close = np.log(p.close)
    span = p.high - p.low
    with np.errstate(invalid="ignore", divide="ignore"):
        location = np.where(span > 0, (p.close - p.low) / span, 0.5)
    mean_volume = indicators.sma(p.volume, _VOLUME_WINDOW)
    return {
        "log_return_1": 100.0 * _difference(log_close, 1),
        "log_return_5": 100.0 * _difference(log_close, 5),
        "range_pct": 100.0 * np.log(p.high / p.low),
        "close_location": location,
        "volume_ratio": np.log((p.volume + 1.0) / (mean_volume + 1.0)),
    }


def _difference(x: FloatArray, lag: int) -> FloatArray:
    out = np.full(len(x), np.nan)
    out[lag:] = x[lag:] - x[:-lag]
    return out


def _check_finite(values: npt.NDArray[np.float32], names: list[str], index: pd.Index) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"feature {names[col]} is not finite at {index[row]}; check the candles around that time",
            field=names[col],
            row=row,
        )
