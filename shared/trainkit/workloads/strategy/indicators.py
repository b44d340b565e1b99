"""Technical indicators with TA-Lib's conventions, over numpy arrays (the loops compiled: :mod:`kernels`).

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
from types import ModuleType
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

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


def _kernels() -> ModuleType:
    """The compiled loops (numba), imported on first use: see :mod:`kernels`."""
    from shared.trainkit.workloads.strategy import kernels

    return kernels


def _empty(n: int) -> FloatArray:
    return np.empty(n, dtype=np.float64)


def _floats(x: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(x, dtype=np.float64)


def sma(x: FloatArray, period: int) -> FloatArray:
    """Simple moving average, as TA-Lib computes it: a running window sum."""
    x = _floats(x)
    out = _empty(len(x))
    _kernels().sma_into(x, period, out)
    return out


def ema(x: FloatArray, period: int, start: int = 0) -> FloatArray:
    """EMA of ``x[start:]`` seeded with the SMA of its first ``period`` values (first value at
    ``start + period - 1``); values before ``start`` are ignored (they may be NaN)."""
    x = _floats(x)
    out = _empty(len(x))
    _kernels().ema_into(x, period, start, out)
    return out


def rsi(close: FloatArray, period: int) -> FloatArray:
    """Wilder's relative strength index, 0..100 (0 for a flat series)."""
    close = _floats(close)
    out = _empty(len(close))
    _kernels().rsi_into(close, period, out)
    return out


def atr(p: Prices, period: int) -> FloatArray:
    """Average true range (Wilder), the true range starting at the second candle."""
    return _atr_outputs(p, {"period": period})[""]


def macd(close: FloatArray, fast: int, slow: int, signal: int) -> dict[str, FloatArray]:
    close = _floats(close)
    n = len(close)
    out = {name: _empty(n) for name in ("", "signal", "histogram", "histogram_pct")}
    _kernels().macd_into(
        close, fast, slow, signal, out[""], out["signal"], out["histogram"], out["histogram_pct"]
    )
    return out


def bbands(close: FloatArray, period: int, std_dev: float) -> dict[str, FloatArray]:
    close = _floats(close)
    n = len(close)
    out = {name: _empty(n) for name in ("", "upper", "middle", "lower", "width")}
    _kernels().bbands_into(
        close, period, float(std_dev), out[""], out["upper"], out["middle"], out["lower"], out["width"]
    )
    return out


def roc(close: FloatArray, period: int) -> FloatArray:
    close = _floats(close)
    out = _empty(len(close))
    _kernels().roc_into(close, period, out)
    return out


def _moving_average(kind: Callable[[FloatArray, int], FloatArray]) -> Callable[[Prices, Params], Outputs]:
    def compute(p: Prices, params: Params) -> Outputs:
        value = kind(p.close, int(params["period"]))
        distance = _empty(len(value))
        _kernels().distance_into(_floats(p.close), value, distance)
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
    return macd(p.close, int(q["fast"]), int(q["slow"]), int(q["signal"]))


def _atr_outputs(p: Prices, q: Params) -> Outputs:
    n = len(p)
    out = {"": _empty(n), "pct": _empty(n)}
    _kernels().atr_into(
        _floats(p.high), _floats(p.low), _floats(p.close), int(q["period"]), out[""], out["pct"]
    )
    return out


def output_id(indicator_id: str, output: str) -> str:
    return f"{indicator_id}_{output}" if output else indicator_id


def output_ids(name: str, indicator_id: str) -> list[str]:
    """Every key ``compute`` returns for this indicator, primary first."""
    return [output_id(indicator_id, o) for o in CATALOG[name].outputs]


def lookback(spec: IndicatorSpecLike) -> int:
    """Index of the first value that is not warm-up NaN (rows lost at the start)."""
    return CATALOG[spec.name].lookback(spec.resolved_params)


def warm_up(rows: int = 64) -> None:
    """Compute every catalogue indicator once on short synthetic candles: numba then has each kernel
    loaded (from its cache, or compiled) in this process, and processes forked from it start warm.

    The prices come from a DataFrame as a training's do: numba compiles per argument type, and pandas
    hands out read-only arrays (copy-on-write), a type of their own."""
    close = 100.0 + np.cumsum(np.sin(np.arange(rows, dtype=np.float64)))
    candles = pd.DataFrame({"open": close, "high": close + 1.0, "low": close - 1.0, "close": close})
    prices = Prices.from_candles(candles.assign(volume=1.0))
    for indicator in CATALOG.values():
        indicator.compute(prices, {name: param.default for name, param in indicator.params.items()})


def compute(candles: pd.DataFrame | Mapping[str, npt.ArrayLike] | Prices, spec: IndicatorSpecLike) -> Outputs:
    """All outputs of one indicator over the candles, keyed by output id, NaN during warm-up."""
    prices = candles if isinstance(candles, Prices) else Prices.from_candles(candles)
    raw = CATALOG[spec.name].compute(prices, spec.resolved_params)
    return {output_id(spec.id, key): value for key, value in raw.items()}
