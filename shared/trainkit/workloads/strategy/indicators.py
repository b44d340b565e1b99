"""Technical indicators with TA-Lib's conventions, vectorised over numpy arrays.

Conventions (those of TA-Lib 0.8, checked against ``tests/data/indicators_talib.json``):

- a value is NaN during the warm-up; ``lookback(spec)`` is the index of the first real value;
- EMA is seeded with the SMA of its first ``period`` inputs, then ``k = 2 / (period + 1)``;
- RSI and ATR use Wilder smoothing (``k = 1 / period``) seeded with a simple average; true range
  starts at the second candle, so ATR's first value is the mean of true ranges 1..period;
- MACD seeds *both* EMAs on the window ending at candle ``slow - 1`` (the fast EMA is not started at
  candle 0), then the signal is an EMA of the MACD line: first value at ``slow + signal - 2``;
- BBANDS uses the population standard deviation;
- ROC is ``(close / close[i - period] - 1) * 100``.

Deliberate difference: TA-Lib treats anything within 1e-8 of zero as zero (RSI's gain + loss, ROC's
divisor), which breaks on assets priced below a cent; here only an exact zero counts.

Each indicator yields named outputs: ``{id}`` is its primary output and multi-output indicators add
``{id}_{output}``. Scale-free derived outputs (``_distance``, ``_pct``, ``percent_b``, ``width``) exist
so fuzzy sets can be written once for an asset at 1.10 and another at 30,000.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.ndimage import uniform_filter1d

from shared.trainkit.workloads.strategy.smoothing import exponential_filter

FloatArray = npt.NDArray[np.float64]
Params = Mapping[str, float]


class IndicatorSpecLike(Protocol):
    """What ``compute`` needs of an indicator declaration (``schema.IndicatorSpec`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def resolved_params(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class Prices:
    """The candle columns indicators read, as float64 arrays of equal length."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @classmethod
    def from_candles(cls, candles: pd.DataFrame | Mapping[str, npt.ArrayLike]) -> Prices:
        cols = {c: np.ascontiguousarray(candles[c], dtype=np.float64) for c in PRICE_COLUMNS}
        return cls(**cols)

    def __len__(self) -> int:
        return int(self.close.shape[0])


PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _nan(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


def _trailing_mean(x: FloatArray, period: int) -> FloatArray:
    """Mean of the ``period`` values ending at each index, in one running-sum pass over ``x`` (the
    first ``period - 1`` values see the series' edge: every caller overwrites or discards them)."""
    return np.asarray(uniform_filter1d(x, period, mode="nearest", origin=(period - 1) // 2))


def sma(x: FloatArray, period: int) -> FloatArray:
    """Simple moving average, as TA-Lib computes it: a running window sum."""
    if len(x) < period:
        return _nan(len(x))
    out = _trailing_mean(x, period)
    out[: period - 1] = np.nan
    return out


def ema(x: FloatArray, period: int, start: int = 0) -> FloatArray:
    """EMA of ``x[start:]`` seeded with the SMA of its first ``period`` values (first value at
    ``start + period - 1``); values before ``start`` are ignored (they may be NaN)."""
    first = start + period - 1
    if len(x) <= first:
        return _nan(len(x))
    return _smoothed(x, first, float(np.mean(x[start : first + 1])), 2.0 / (period + 1))


def wilder(x: FloatArray, period: int, first: int) -> FloatArray:
    """Wilder smoothing: the mean of ``x[first-period+1 : first+1]`` at ``first``, then ``k = 1/period``."""
    if len(x) <= first:
        return _nan(len(x))
    return _smoothed(x, first, float(np.mean(x[first - period + 1 : first + 1])), 1.0 / period)


def _smoothed(x: FloatArray, first: int, seed: float, k: float) -> FloatArray:
    """NaN before ``first``, ``seed`` at it, then ``y[i] = (1 - k) * y[i-1] + k * x[i]``."""
    out = np.empty(len(x), dtype=np.float64)
    out[:first] = np.nan
    out[first] = seed
    out[first + 1 :] = exponential_filter(x[first + 1 :], 1.0 - k, seed, scale=k)
    return out


def rsi(close: FloatArray, period: int) -> FloatArray:
    change = np.diff(close, prepend=close[:1])
    gain = np.maximum(change, 0.0)
    np.subtract(gain, change, out=change)  # the loss, in place: max(c, 0) - c == max(-c, 0)
    gain = wilder(gain, period, period)
    loss = wilder(change, period, period)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(gain, total, out=gain)
    gain *= 100.0
    gain[total == 0.0] = 0.0
    return gain


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    prev_close = np.empty_like(close)
    prev_close[0] = np.nan
    prev_close[1:] = close[:-1]
    top = np.fmax(high, prev_close)
    np.fmin(low, prev_close, out=prev_close)
    top -= prev_close
    return top


def atr(p: Prices, period: int) -> FloatArray:
    return wilder(true_range(p.high, p.low, p.close), period, period)


def macd(close: FloatArray, fast: int, slow: int, signal: int) -> dict[str, FloatArray]:
    start = slow - fast  # both EMAs yield their first value at slow - 1, as TA-Lib does
    line = ema(close, fast, start)
    line -= ema(close, slow)
    sig = ema(line, signal, slow - 1)
    line[: slow + signal - 2] = np.nan
    return {"": line, "signal": sig, "histogram": line - sig}


def bbands(close: FloatArray, period: int, std_dev: float) -> dict[str, FloatArray]:
    n = len(close)
    names = ("", "upper", "middle", "lower", "width")
    if n < period:
        return {name: _nan(n) for name in names}
    # Population variance as E[x²] - E[x]², on values centred on the first close to limit cancellation;
    # the window means are running sums, and every later pass writes straight into the outputs.
    ref = close[0]
    centred = close - ref
    mean = _trailing_mean(centred, period)
    np.multiply(centred, centred, out=centred)
    variance = _trailing_mean(centred, period)
    np.subtract(close, ref, out=centred)
    variance -= mean * mean
    half_band = np.sqrt(np.maximum(variance, 0.0, out=variance), out=variance)
    half_band *= std_dev
    middle = np.add(mean, ref, out=mean)
    upper = middle + half_band
    lower = middle - half_band
    with np.errstate(invalid="ignore", divide="ignore"):
        # %B = (close - lower) / (upper - lower) = 0.5 + (close - middle) / (2 * half band)
        half_band *= 2.0
        percent_b = np.subtract(close, middle, out=centred)
        percent_b /= half_band
        percent_b += 0.5
        percent_b[~(half_band > 0)] = 0.5  # a flat window (or NaN) sits mid-band
        width = np.divide(half_band, middle, out=half_band)
    out = {"": percent_b, "upper": upper, "middle": middle, "lower": lower, "width": width}
    for value in out.values():
        value[: period - 1] = np.nan
    return out


def roc(close: FloatArray, period: int) -> FloatArray:
    out = _nan(len(close))
    prev = close[:-period] if period else close
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.divide(close[period:], prev, out=out[period:])
        value -= 1.0
        value *= 100.0
        value[prev == 0.0] = 0.0
    return out


def _percent_of_close(value: FloatArray, close: FloatArray) -> FloatArray:
    out = np.divide(value, close)
    out *= 100.0
    return out


def _moving_average(kind: Callable[[FloatArray, int], FloatArray]) -> Callable[[Prices, Params], Outputs]:
    def compute(p: Prices, params: Params) -> Outputs:
        value = kind(p.close, int(params["period"]))
        distance = np.divide(p.close, value)
        distance -= 1.0
        distance *= 100.0
        return {"": value, "distance": distance}

    return compute


Outputs = dict[str, FloatArray]


@dataclass(frozen=True)
class ParamDef:
    default: float
    minimum: float
    maximum: float
    integer: bool = True


@dataclass(frozen=True)
class IndicatorDef:
    """One entry of the catalogue: parameters, outputs, warm-up and the computation."""

    name: str
    params: dict[str, ParamDef]
    outputs: tuple[str, ...]  # "" is the primary output, named by the bare id
    lookback: Callable[[Params], int]
    compute: Callable[[Prices, Params], Outputs]
    description: str


def _period(default: int, minimum: int = 2) -> dict[str, ParamDef]:
    return {"period": ParamDef(default, minimum, 100_000)}


CATALOG: dict[str, IndicatorDef] = {
    "sma": IndicatorDef(
        "sma", _period(20), ("", "distance"), lambda q: int(q["period"]) - 1, _moving_average(sma),
        "simple moving average of close; distance = % of close above it",
    ),
    "ema": IndicatorDef(
        "ema", _period(20), ("", "distance"), lambda q: int(q["period"]) - 1, _moving_average(ema),
        "exponential moving average of close; distance = % of close above it",
    ),
    "rsi": IndicatorDef(
        "rsi", _period(14), ("",), lambda q: int(q["period"]),
        lambda p, q: {"": rsi(p.close, int(q["period"]))}, "relative strength index, 0..100",
    ),
    "macd": IndicatorDef(
        "macd",
        {
            "fast": ParamDef(12, 2, 100_000),
            "slow": ParamDef(26, 2, 100_000),
            "signal": ParamDef(9, 1, 100_000),
        },
        ("", "signal", "histogram", "histogram_pct"),
        lambda q: int(q["slow"]) + int(q["signal"]) - 2,
        lambda p, q: _macd_outputs(p, q),
        "MACD line, signal, histogram; histogram_pct = histogram as % of close",
    ),
    "bbands": IndicatorDef(
        "bbands",
        {"period": ParamDef(20, 2, 100_000), "std_dev": ParamDef(2.0, 0.01, 100.0, integer=False)},
        ("", "upper", "middle", "lower", "width"),
        lambda q: int(q["period"]) - 1,
        lambda p, q: bbands(p.close, int(q["period"]), float(q["std_dev"])),
        "Bollinger bands; primary output is %B (0 at lower, 1 at upper band); width = band / middle",
    ),
    "atr": IndicatorDef(
        "atr", _period(14, 1), ("", "pct"), lambda q: int(q["period"]),
        lambda p, q: _atr_outputs(p, q), "average true range; pct = ATR as % of close",
    ),
    "roc": IndicatorDef(
        "roc", _period(10, 1), ("",), lambda q: int(q["period"]),
        lambda p, q: {"": roc(p.close, int(q["period"]))}, "rate of change in %",
    ),
}  # fmt: skip


def _macd_outputs(p: Prices, q: Params) -> Outputs:
    out = macd(p.close, int(q["fast"]), int(q["slow"]), int(q["signal"]))
    out["histogram_pct"] = _percent_of_close(out["histogram"], p.close)
    return out


def _atr_outputs(p: Prices, q: Params) -> Outputs:
    value = atr(p, int(q["period"]))
    return {"": value, "pct": _percent_of_close(value, p.close)}


def output_id(indicator_id: str, output: str) -> str:
    return f"{indicator_id}_{output}" if output else indicator_id


def output_ids(name: str, indicator_id: str) -> list[str]:
    """Every key ``compute`` returns for this indicator, primary first."""
    return [output_id(indicator_id, o) for o in CATALOG[name].outputs]


def lookback(spec: IndicatorSpecLike) -> int:
    """Index of the first value that is not warm-up NaN (rows lost at the start)."""
    return CATALOG[spec.name].lookback(spec.resolved_params)


def compute(candles: pd.DataFrame | Mapping[str, npt.ArrayLike] | Prices, spec: IndicatorSpecLike) -> Outputs:
    """All outputs of one indicator over the candles, keyed by output id, NaN during warm-up."""
    prices = candles if isinstance(candles, Prices) else Prices.from_candles(candles)
    raw = CATALOG[spec.name].compute(prices, spec.resolved_params)
    return {output_id(spec.id, key): value for key, value in raw.items()}
