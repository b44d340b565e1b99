"""Sample candles: deterministic, consistent OHLC, loadable; sample strategies train on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.trainkit.errors import ConfigError
from shared.trainkit.workloads.strategy.candles import list_datasets, load_candles
from shared.trainkit.workloads.strategy.features import build_features
from shared.trainkit.workloads.strategy.labels import align, make_labels
from shared.trainkit.workloads.strategy.sample_data import (
    generate_candles,
    timeframe_minutes,
    write_sample_data,
)
from shared.trainkit.workloads.strategy.schema import list_strategies, load_strategy_file
from shared.trainkit.workloads.strategy.splits import time_split

STRATEGIES = Path(__file__).parents[2] / "strategies"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_sample_data(directory)
    return directory


def test_writes_every_symbol_and_timeframe_atomically(sample_dir: Path) -> None:
    names = sorted(p.name for p in sample_dir.iterdir())
    assert names == [f"{s}_{t}.csv" for s in ("AAPL", "BTCUSD", "EURUSD") for t in ("1d", "1h")]
    assert [d.rows for d in list_datasets(sample_dir)] == [5000] * 6


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = write_sample_data(tmp_path / "a", symbols=("EURUSD",), timeframes=("1h",), rows=300, seed=1)
    again = write_sample_data(tmp_path / "b", symbols=("EURUSD",), timeframes=("1h",), rows=300, seed=1)
    other = write_sample_data(tmp_path / "c", symbols=("EURUSD",), timeframes=("1h",), rows=300, seed=2)
    assert first[0].read_bytes() == again[0].read_bytes() != other[0].read_bytes()


@pytest.mark.parametrize(("symbol", "timeframe"), [("BTCUSD", "1h"), ("EURUSD", "1d"), ("XYZ", "15m")])
def test_candles_are_consistent_and_realistic(symbol: str, timeframe: str) -> None:
    frame = generate_candles(symbol, timeframe, rows=3000, seed=5)
    assert len(frame) == 3000
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["volume"] > 0).all()
    assert (frame["low"] > 0).all()
    abs_returns = np.abs(np.diff(np.log(frame["close"].to_numpy())))
    # volatility clusters: large moves follow large moves
    assert np.corrcoef(abs_returns[1:], abs_returns[:-1])[0, 1] > 0.1


def test_non_crypto_hourly_data_skips_weekends() -> None:
    assert (pd.DatetimeIndex(generate_candles("AAPL", "1h", rows=500).index).day_of_week < 5).all()
    assert (pd.DatetimeIndex(generate_candles("BTCUSD", "1h", rows=500).index).day_of_week == 6).any()


def test_bad_timeframe_and_rows_are_config_errors() -> None:
    assert timeframe_minutes("4h") == 240
    with pytest.raises(ConfigError, match="timeframe"):
        generate_candles("AAPL", "hourly")
    with pytest.raises(ConfigError, match="rows"):
        generate_candles("AAPL", "1h", rows=0)


@pytest.mark.parametrize("strategy", sorted(p.stem for p in STRATEGIES.glob("*.yaml")))
@pytest.mark.parametrize(("symbol", "timeframe"), [("EURUSD", "1h"), ("BTCUSD", "1h"), ("AAPL", "1d")])
def test_sample_strategies_give_every_class_in_every_split(
    sample_dir: Path, strategy: str, symbol: str, timeframe: str
) -> None:
    config = load_strategy_file(STRATEGIES / f"{strategy}.yaml")
    candles = load_candles(sample_dir, symbol, timeframe)
    features, labels = align(build_features(candles, config), make_labels(candles, config.labels))
    split = time_split(len(labels), config.split.train, config.split.val, config.split.test)
    for name, rows in split.items():
        counts = np.bincount(labels[rows], minlength=3)
        assert (counts > 0).all(), f"{name}: {counts}"
    train_counts = np.bincount(labels[split.train], minlength=3)
    assert train_counts.min() / train_counts.sum() > 0.05
    assert features.values.shape[0] == len(labels)


def test_every_shipped_strategy_is_listed_valid() -> None:
    assert all(info.valid for info in list_strategies(STRATEGIES))
