"""Fuzzy memberships and the feature matrix: shapes, ranges, warm-up, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.trainkit.errors import DataError
from shared.trainkit.workloads.strategy.features import RAW_FEATURES, build_features, warmup_rows
from shared.trainkit.workloads.strategy.fuzzy import membership, trapezoidal
from shared.trainkit.workloads.strategy.sample_data import generate_candles
from shared.trainkit.workloads.strategy.schema import FuzzySet, StrategyConfig, parse_strategy

STRATEGY = """\
name: feat
indicators:
  - name: rsi
  - name: bbands
fuzzy_sets:
  rsi_14:
    low: {type: trapezoidal, parameters: [0, 0, 30, 40]}
    mid: {type: triangular, parameters: [30, 50, 70]}
  bbands_20_2:
    high: {type: trapezoidal, parameters: [0.8, 1, 5, 5]}
labels: {method: forward_return, horizon: 3}
"""


@pytest.fixture(scope="module")
def config() -> StrategyConfig:
    return parse_strategy(STRATEGY)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return generate_candles("AAPL", "1h", rows=400, seed=3)


def test_triangular_membership_matches_hand_values() -> None:
    x = np.array([10.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, np.nan])
    got = membership(x, FuzzySet(type="triangular", parameters=[30, 50, 70]))
    np.testing.assert_allclose(got, [0, 0, 0.5, 1, 0.5, 0, 0, np.nan])


def test_trapezoidal_membership_has_a_flat_top_and_vertical_shoulders() -> None:
    x = np.array([-1.0, 0.0, 10.0, 30.0, 35.0, 40.0])
    np.testing.assert_allclose(trapezoidal(x, (0, 0, 30, 40)), [0, 1, 1, 1, 0.5, 0])
    np.testing.assert_allclose(trapezoidal(x, (0, 10, 30, 30)), [0, 0, 1, 1, 0, 0])


def test_features_are_memberships_then_raw_features_with_warmup_dropped(
    config: StrategyConfig, candles: pd.DataFrame
) -> None:
    matrix = build_features(candles, config)
    assert matrix.names == ["rsi_14.low", "rsi_14.mid", "bbands_20_2.high", *RAW_FEATURES]
    assert matrix.values.dtype == np.float32
    assert matrix.first_row == warmup_rows(config) == 19
    assert matrix.values.shape == (len(candles) - 19, len(matrix.names))
    assert matrix.index.equals(candles.index[19:])
    assert np.isfinite(matrix.values).all()
    memberships = matrix.values[:, :3]
    assert memberships.min() >= 0.0
    assert memberships.max() <= 1.0
    assert memberships.max(axis=0).min() > 0.5  # every set is actually hit on this data


def test_features_do_not_look_ahead(config: StrategyConfig, candles: pd.DataFrame) -> None:
    full = build_features(candles, config)
    head = build_features(candles.iloc[:300], config)
    np.testing.assert_array_equal(full.values[: len(head.values)], head.values)


def test_raw_features_are_scale_free(config: StrategyConfig, candles: pd.DataFrame) -> None:
    scaled = candles.copy()
    scaled[["open", "high", "low", "close"]] *= 1000.0
    np.testing.assert_allclose(
        build_features(scaled, config).values, build_features(candles, config).values, atol=1e-4
    )


def test_too_few_candles_say_how_many_are_needed(config: StrategyConfig, candles: pd.DataFrame) -> None:
    with pytest.raises(DataError) as info:
        build_features(candles.iloc[:15], config)
    assert info.value.details == {"field": "candles", "needed": 20, "available": 15}
    assert "at least 20 candles" in info.value.message
    assert "got 15" in info.value.message


def test_longest_indicator_sets_the_warmup() -> None:
    config = parse_strategy(STRATEGY.replace("  - name: bbands\n", "  - name: bbands\n  - name: macd\n"))
    assert warmup_rows(config) == 33
