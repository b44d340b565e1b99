"""Seeded, realistic-looking OHLCV candles, so a first run needs no download.

The close is a geometric random walk whose drift follows a Markov chain of regimes (bull, bear,
sideways with mean reversion) and whose volatility clusters: log-volatility is a persistent AR(1)
process (stochastic volatility, GARCH-like bursts and calm spells), with a higher level in bear
regimes. Each candle opens near the previous close, its high/low extend beyond open and close by a
fraction of the bar's volatility, and volume rises with the size of the move. Same seed, same bytes.
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared.trainkit.errors import ConfigError
from shared.trainkit.workloads.strategy.candles import candle_path
from shared.trainkit.workloads.strategy.smoothing import exponential_filter

DEFAULT_ROWS = 5000


@dataclass(frozen=True)
class MarketProfile:
    """Price level, daily volatility and volume scale of a symbol; ``weekends`` for 24/7 markets."""

    price: float
    daily_vol: float
    volume: float
    weekends: bool
    decimals: int


PROFILES = {
    "EURUSD": MarketProfile(1.10, 0.006, 2_000, weekends=False, decimals=5),
    "BTCUSD": MarketProfile(30_000.0, 0.035, 500, weekends=True, decimals=2),
    "AAPL": MarketProfile(150.0, 0.018, 80_000, weekends=False, decimals=2),
}
_DEFAULT_PROFILE = MarketProfile(100.0, 0.015, 10_000, weekends=False, decimals=4)
#: Regimes: (daily drift in units of daily volatility, volatility multiplier, 1 if sideways).
_REGIMES = np.array([[0.25, 0.9, 0.0], [-0.3, 1.4, 0.0], [0.0, 0.8, 1.0]])
_TIMEFRAME = re.compile(r"^(\d+)(m|h|d|w)$")
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10_080}


def timeframe_minutes(timeframe: str) -> int:
    match = _TIMEFRAME.match(timeframe)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"timeframe {timeframe!r} is not understood; use a number and m, h, d or w (e.g. 15m, 1h, 1d)",
            field="timeframe",
        )
    return int(match.group(1)) * _MINUTES[match.group(2)]


def generate_candles(symbol: str, timeframe: str, rows: int = DEFAULT_ROWS, seed: int = 7) -> pd.DataFrame:
    """Candles in the shape ``load_candles`` returns, ending before 2025-01-01 UTC."""
    if rows < 1:
        raise ConfigError(f"rows must be at least 1, got {rows}", field="rows")
    profile = PROFILES.get(symbol.upper(), _DEFAULT_PROFILE)
    minutes = timeframe_minutes(timeframe)
    rng = np.random.default_rng([seed, zlib.crc32(f"{symbol}_{timeframe}".encode())])
    bar_vol = profile.daily_vol * np.sqrt(minutes / 1440)
    regime = _regimes(rng, rows, mean_length=int(np.clip(200 * np.sqrt(60 / minutes), 30, 400)))
    drift, vol_mult, sideways = (_REGIMES[regime, i] for i in range(3))

    # Stochastic volatility: log-vol AR(1) with persistence 0.98 (bursts that decay over ~50 bars).
    log_vol = exponential_filter(rng.normal(0.0, 0.2, rows), 0.98)
    sigma = bar_vol * vol_mult * np.exp(log_vol - 0.2**2 / (2 * (1 - 0.98**2)))
    moves = sigma * rng.standard_t(df=5, size=rows) * np.sqrt(3 / 5)  # fat tails, unit variance
    trending = drift * profile.daily_vol * minutes / 1440 + moves
    # Trending regimes random-walk; sideways ones oscillate (AR(1), phi 0.95) around where they began.
    swings = exponential_filter(moves * sideways, 0.95)
    returns = np.diff(swings, prepend=0.0) + trending * (1.0 - sideways)
    # Soft bounds (tanh) keep even a million candles within 1/50..50x of the start price, so a long
    # bear run cannot round the price to zero.
    bound = np.log(50.0)
    close = profile.price * np.exp(bound * np.tanh(np.cumsum(returns) / bound))

    gap = sigma * rng.normal(0.0, 0.1, rows)
    open_ = np.empty(rows)
    open_[0] = profile.price
    open_[1:] = close[:-1] * np.exp(gap[1:])
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, 0.6, rows)) * sigma)
    low = bottom * np.exp(-np.abs(rng.normal(0.0, 0.6, rows)) * sigma)
    surprise = np.abs(returns) / np.maximum(sigma, 1e-12)
    volume = profile.volume * np.sqrt(minutes / 60) * np.exp(0.4 * surprise + rng.normal(0.0, 0.3, rows))

    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": np.round(volume) + 1.0},
        index=_timestamps(rows, minutes, profile.weekends),
    )
    # Rounding is monotone, so high >= max(open, close) >= min(open, close) >= low still holds.
    return frame.round({c: profile.decimals for c in ("open", "high", "low", "close")})


def _regimes(rng: np.random.Generator, rows: int, mean_length: int) -> np.ndarray:
    """A persistent regime label per bar: geometric durations, each next regime differs from the last."""
    lengths = rng.geometric(1.0 / mean_length, size=rows // mean_length * 3 + 3)
    steps = rng.integers(1, 3, size=lengths.size)
    labels = (np.cumsum(steps) + rng.integers(0, 3)) % 3
    return np.repeat(labels, lengths)[:rows]


def _timestamps(rows: int, minutes: int, weekends: bool) -> pd.DatetimeIndex:
    end = pd.Timestamp("2025-01-01", tz="UTC")
    step = pd.Timedelta(minutes=minutes)
    factor = 1 if weekends else 1.5  # weekdays are 5/7 of the calendar
    candidates = pd.date_range(end=end - step, periods=int(rows * factor) + 8, freq=step)
    if not weekends and minutes < 10_080:
        candidates = candidates[candidates.day_of_week < 5]
    return pd.DatetimeIndex(candidates[-rows:], name="timestamp")


def write_sample_data(
    data_dir: Path,
    symbols: Sequence[str] = ("EURUSD", "BTCUSD", "AAPL"),
    timeframes: Sequence[str] = ("1h", "1d"),
    rows: int = DEFAULT_ROWS,
    seed: int = 7,
) -> list[Path]:
    """Write ``{SYMBOL}_{TIMEFRAME}.csv`` for every pair (atomically: temp file, then rename)."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for symbol in symbols:
        for timeframe in timeframes:
            path = candle_path(directory, symbol, timeframe)
            frame = generate_candles(symbol, timeframe, rows, seed)
            text = frame.to_csv(date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.10g")
            _write_atomically(path, text.encode())
            written.append(path)
    return written


def _write_atomically(path: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The sample strategies shipped inside the package (the repository's ``strategies/`` links here).
SAMPLE_STRATEGIES_DIR = Path(__file__).resolve().parent / "samples"


def write_sample_strategies(strategies_dir: Path) -> list[Path]:
    """Copy the shipped sample strategies into ``strategies_dir``, leaving files already there alone."""
    strategies_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source in sorted(SAMPLE_STRATEGIES_DIR.glob("*.yaml")):
        target = strategies_dir / source.name
        if not target.exists():
            target.write_bytes(source.read_bytes())
            written.append(target)
    return written
