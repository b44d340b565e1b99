"""Indicators agree with TA-Lib (tests/data/indicators_talib.json) and with hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.trainkit.workloads.strategy import indicators
from shared.trainkit.workloads.strategy.schema import IndicatorSpec
from shared.trainkit.workloads.strategy.smoothing import exponential_filter, exponential_filter_reference

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "indicators_talib.json").read_text())
CANDLES = {k: np.asarray(v, dtype=np.float64) for k, v in REFERENCE["candles"].items()}


def _ref(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _compute(name: str, **params: float) -> dict[str, np.ndarray]:
    return indicators.compute(CANDLES, IndicatorSpec(name=name, params=params))


CASES = [
    ("sma", {"period": 20}, "sma_20", {"sma_20": "sma_20"}),
    ("ema", {"period": 20}, "ema_20", {"ema_20": "ema_20"}),
    ("rsi", {"period": 14}, "rsi_14", {"rsi_14": "rsi_14"}),
    ("atr", {"period": 14}, "atr_14", {"atr_14": "atr_14"}),
    ("roc", {"period": 10}, "roc_10", {"roc_10": "roc_10"}),
    (
        "macd",
        {},
        "macd_12_26_9",
        {"macd": "macd_12_26_9", "signal": "macd_12_26_9_signal", "histogram": "macd_12_26_9_histogram"},
    ),
    (
        "bbands",
        {"period": 20, "std_dev": 2},
        "bbands_20_2",
        {"upper": "bbands_20_2_upper", "middle": "bbands_20_2_middle", "lower": "bbands_20_2_lower"},
    ),
]


@pytest.mark.parametrize(("name", "params", "ref_key", "outputs"), CASES, ids=[c[0] for c in CASES])
def test_indicator_matches_talib_after_warmup_and_is_nan_during_it(
    name: str, params: dict[str, float], ref_key: str, outputs: dict[str, str]
) -> None:
    got = _compute(name, **params)
    reference = REFERENCE["indicators"][ref_key]
    for ref_name, our_key in outputs.items():
        expected = _ref(reference if isinstance(reference, list) else reference[ref_name])
        np.testing.assert_array_equal(np.isnan(got[our_key]), np.isnan(expected), err_msg=our_key)
        valid = ~np.isnan(expected)
        np.testing.assert_allclose(got[our_key][valid], expected[valid], rtol=0, atol=1e-9, err_msg=our_key)


@pytest.mark.parametrize(("name", "params", "ref_key", "outputs"), CASES, ids=[c[0] for c in CASES])
def test_lookback_is_the_index_of_the_first_value(
    name: str, params: dict[str, float], ref_key: str, outputs: dict[str, str]
) -> None:
    spec = IndicatorSpec(name=name, params=params)
    first = next(iter(outputs.values()))
    values = indicators.compute(CANDLES, spec)[first]
    assert indicators.lookback(spec) == int(np.flatnonzero(~np.isnan(values))[0])


def test_sma_and_roc_of_a_short_series_match_hand_computation() -> None:
    close = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    np.testing.assert_allclose(indicators.sma(close, 3), [np.nan, np.nan, 2.0, 3.0, 13 / 3])
    np.testing.assert_allclose(indicators.roc(close, 2), [np.nan, np.nan, 200.0, 100.0, 100.0])


def test_ema_is_seeded_with_the_sma_then_smoothed_with_two_over_period_plus_one() -> None:
    close = np.array([2.0, 4.0, 6.0, 10.0])
    # seed mean(2, 4, 6) = 4 at index 2, then 4 + 0.5 * (10 - 4) = 7
    np.testing.assert_allclose(indicators.ema(close, 3), [np.nan, np.nan, 4.0, 7.0])


def test_rsi_uses_wilder_averages_and_is_zero_for_a_flat_series() -> None:
    close = np.array([10.0, 11.0, 10.0, 12.0, 12.0])
    # period 2: gains (1, 0), losses (0, 1) -> 50; then a gain of 2: avg gain (0.5 + 2) / 2 = 1.25,
    # avg loss (0.5 + 0) / 2 = 0.25 -> 100 * 1.25 / 1.5
    got = indicators.rsi(close, 2)
    np.testing.assert_allclose(got[:4], [np.nan, np.nan, 50.0, 100 * 1.25 / 1.5])
    assert indicators.rsi(np.full(10, 5.0), 3)[3:].tolist() == [0.0] * 7


def test_atr_first_value_is_the_mean_true_range_from_the_second_candle() -> None:
    high = np.array([10.0, 12.0, 11.0])
    low = np.array([9.0, 10.0, 8.0])
    close = np.array([9.5, 11.0, 9.0])
    prices = indicators.Prices(open=close, high=high, low=low, close=close, volume=close)
    # true ranges: (12 - 9.5 = 2.5), (11 - 8 = 3): ATR(2) at index 2 = 2.75
    np.testing.assert_allclose(indicators.atr(prices, 2), [np.nan, np.nan, 2.75])


def test_bollinger_bands_use_the_population_standard_deviation() -> None:
    close = np.array([1.0, 2.0, 3.0])
    bands = indicators.bbands(close, 3, 2.0)
    std = np.sqrt(2 / 3)
    np.testing.assert_allclose(bands["upper"][2], 2 + 2 * std)
    np.testing.assert_allclose(bands["lower"][2], 2 - 2 * std)
    np.testing.assert_allclose(bands[""][2], (3 - (2 - 2 * std)) / (4 * std))  # %B


def test_indicators_of_a_series_shorter_than_the_warmup_are_all_nan() -> None:
    short = {k: v[:10] for k, v in CANDLES.items()}
    out = indicators.compute(short, IndicatorSpec(name="macd"))
    assert all(np.isnan(v).all() for v in out.values())


@pytest.mark.parametrize(
    "spec",
    [
        IndicatorSpec(name="macd"),
        IndicatorSpec(name="macd", params={"fast": 3, "slow": 40, "signal": 1}),
        IndicatorSpec(name="rsi"),
        IndicatorSpec(name="atr", params={"period": 1}),
        IndicatorSpec(name="bbands"),
    ],
    ids=lambda spec: spec.id,
)
def test_a_value_depends_only_on_candles_up_to_it_from_the_first_real_value_on(spec: IndicatorSpec) -> None:
    """No look-ahead, and the one-pass kernels' edges: each prefix from one real value to the whole
    series yields exactly the whole series' values on it."""
    whole = indicators.compute(CANDLES, spec)
    first = indicators.lookback(spec)
    for end in (first + 1, first + 2, first + 37, len(CANDLES["close"])):
        prefix = indicators.compute({k: v[:end] for k, v in CANDLES.items()}, spec)
        for key, values in prefix.items():
            np.testing.assert_array_equal(values, whole[key][:end], err_msg=f"{key} on {end} candles")
            assert np.isnan(values[:first]).all(), key
            assert not np.isnan(values[first:]).any(), key


def test_scale_free_outputs_do_not_change_when_prices_are_scaled() -> None:
    scaled = {k: v * (1000.0 if k != "volume" else 1.0) for k, v in CANDLES.items()}
    for spec, key in [
        (IndicatorSpec(name="atr"), "atr_14_pct"),
        (IndicatorSpec(name="ema"), "ema_20_distance"),
        (IndicatorSpec(name="macd"), "macd_12_26_9_histogram_pct"),
        (IndicatorSpec(name="bbands"), "bbands_20_2"),
    ]:
        base, big = indicators.compute(CANDLES, spec)[key], indicators.compute(scaled, spec)[key]
        np.testing.assert_allclose(big, base, rtol=1e-9, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("decay", [0.0, 1e-20, 1 / 3, 13 / 14, 0.99, 0.9999])
@pytest.mark.parametrize("n", [0, 1, 31, 33, 5000])
def test_exponential_filter_agrees_with_the_plain_loop(decay: float, n: int) -> None:
    u = np.random.default_rng(n).normal(size=n) * 100
    expected = exponential_filter_reference(u, decay, 5.0)
    got = exponential_filter(u, decay, 5.0)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-9)


def test_exponential_filter_rejects_a_decay_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="decay"):
        exponential_filter(np.ones(3), 1.0)
