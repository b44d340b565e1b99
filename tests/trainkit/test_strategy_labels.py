"""Labels (forward return, zigzag), their alignment with features, the time split and class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.trainkit.errors import ConfigError, DataError
from shared.trainkit.workloads.strategy.features import FeatureMatrix
from shared.trainkit.workloads.strategy.labels import (
    BUY,
    CLASS_NAMES,
    HOLD,
    SELL,
    align,
    make_labels,
    zigzag_pivots,
)
from shared.trainkit.workloads.strategy.schema import ForwardReturnLabels, ZigzagLabels
from shared.trainkit.workloads.strategy.splits import class_weights, time_split


def _candles(close: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame({"close": close}, index=index)


def test_class_names_follow_the_label_values() -> None:
    assert (CLASS_NAMES[BUY], CLASS_NAMES[HOLD], CLASS_NAMES[SELL]) == ("BUY", "HOLD", "SELL")


def test_forward_return_labels_drop_the_last_horizon_candles() -> None:
    spec = ForwardReturnLabels(method="forward_return", horizon=2, buy_threshold=0.05, sell_threshold=-0.05)
    labels = make_labels(_candles([100, 101, 110, 100, 90, 91]), spec)
    # returns over 2 candles: +10 %, -1 %, -18 %, -9 %
    assert labels.dtype == np.int64
    assert labels.tolist() == [BUY, HOLD, SELL, SELL]


def test_forward_return_needs_more_candles_than_the_horizon() -> None:
    with pytest.raises(DataError, match="horizon=5"):
        make_labels(_candles([1, 2, 3]), ForwardReturnLabels(method="forward_return", horizon=5))


def test_zigzag_pivots_alternate_and_are_confirmed_by_the_threshold() -> None:
    close = np.array([100, 104, 111, 108, 99, 97, 103, 108, 107.0])
    # low 100 confirmed by 111 (>= 100 * 1.1); high 111 by 99 (<= 111 * 0.9); low 97 by 108 (>= 97 * 1.1)
    assert zigzag_pivots(close, 0.1).tolist() == [0, 2, 5]


def test_zigzag_labels_run_until_the_last_confirmed_pivot() -> None:
    close = [100, 104, 111, 108, 99, 97, 103, 108, 107.0]
    labels = make_labels(_candles(close), ZigzagLabels(method="zigzag", threshold=0.1))
    # to 111: +11 %, +6.7 %, then from the high down to 97: -12.6 %, -10.2 %, -2 %
    assert labels.tolist() == [BUY, HOLD, SELL, SELL, HOLD]


def test_zigzag_without_two_swings_is_an_error() -> None:
    with pytest.raises(DataError, match=r"lower labels\.threshold"):
        make_labels(_candles([100, 101, 102, 103]), ZigzagLabels(method="zigzag", threshold=0.1))


def test_align_keeps_rows_with_both_features_and_a_label() -> None:
    index = pd.date_range("2024-01-01", periods=7, freq="h", tz="UTC")
    features = FeatureMatrix(np.arange(7 * 2, dtype=np.float32).reshape(7, 2), ["a", "b"], index, first_row=3)
    labels = np.arange(8, dtype=np.int64)  # candles 0..7 labelled, features describe candles 3..9
    kept, y = align(features, labels)
    assert y.tolist() == [3, 4, 5, 6, 7]
    assert kept.values.shape == (5, 2)
    assert kept.index.equals(index[:5])
    with pytest.raises(DataError, match="no candle has both"):
        align(features, labels[:3])


def test_time_split_is_contiguous_and_chronological() -> None:
    split = time_split(100, 0.7, 0.15, 0.15)
    assert (split.train, split.val, split.test) == (slice(0, 70), slice(70, 85), slice(85, 100))
    assert split.sizes() == {"train": 70, "val": 15, "test": 15}


def test_time_split_gap_purges_rows_between_sets() -> None:
    split = time_split(104, 0.7, 0.15, 0.15, gap=2)
    assert split.train.stop + 2 == split.val.start
    assert split.val.stop + 2 == split.test.start
    assert split.test.stop == 104


def test_time_split_leaving_a_set_empty_says_which_and_how_many_rows() -> None:
    with pytest.raises(DataError) as info:
        time_split(5, 0.8, 0.1, 0.1)
    assert info.value.details["field"] == "split.val"
    assert "5 rows" in info.value.message


def test_time_split_rejects_fractions_that_do_not_sum_to_one() -> None:
    with pytest.raises(ConfigError, match="sum to 1"):
        time_split(100, 0.5, 0.3, 0.3)
    with pytest.raises(ConfigError, match=r"split\.val"):
        time_split(100, 0.9, 0.0, 0.1)


def test_class_weights_are_inverse_frequency() -> None:
    weights = class_weights(np.array([0, 0, 0, 1, 2, 2]), 3)
    np.testing.assert_allclose(weights, [6 / 9, 6 / 3, 6 / 6])
    np.testing.assert_allclose(class_weights(np.array([0, 1, 2]), 3), [1, 1, 1])


def test_class_weights_stay_finite_when_a_class_is_absent() -> None:
    weights = class_weights(np.array([0, 0, 2]), 3)
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights, [3 / 4, 1.0, 3 / 2])
    with pytest.raises(DataError, match=r"0\.\.2"):
        class_weights(np.array([0, 3]), 3)
