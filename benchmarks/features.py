"""How fast are indicators and the feature pipeline? Milliseconds per million candles.

Run: ``.venv/bin/python benchmarks/features.py [--rows 1000000] [--repeats 7]``. Prints the median of
several runs for each indicator alone, for the whole TA-Lib reference set (SMA 20, EMA 20, RSI 14,
MACD 12/26/9, BBANDS 20/2, ATR 14, ROC 10), and for indicators + fuzzy memberships + feature matrix on
each sample strategy. TA-Lib itself runs the reference set in the same process, alternating with ours, and
the median of the paired ratios is printed (target: <= 2.0x TA-Lib).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import talib

from shared.trainkit.workloads.strategy import indicators
from shared.trainkit.workloads.strategy.features import build_features
from shared.trainkit.workloads.strategy.indicators import Prices
from shared.trainkit.workloads.strategy.sample_data import generate_candles
from shared.trainkit.workloads.strategy.schema import IndicatorSpec, load_strategy_file

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
REFERENCE_SET = [
    IndicatorSpec(name="sma", params={"period": 20}),
    IndicatorSpec(name="ema", params={"period": 20}),
    IndicatorSpec(name="rsi", params={"period": 14}),
    IndicatorSpec(name="macd"),
    IndicatorSpec(name="bbands", params={"period": 20, "std_dev": 2}),
    IndicatorSpec(name="atr", params={"period": 14}),
    IndicatorSpec(name="roc", params={"period": 10}),
]


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm caches and allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def talib_reference_set(p: Prices) -> None:
    """TA-Lib's own functions for ``REFERENCE_SET``, with the same parameters."""
    talib.SMA(p.close, 20)
    talib.EMA(p.close, 20)
    talib.RSI(p.close, 14)
    talib.MACD(p.close, 12, 26, 9)
    talib.BBANDS(p.close, 20, 2.0, 2.0)
    talib.ATR(p.high, p.low, p.close, 14)
    talib.ROC(p.close, 10)


def paired_ms(
    ours: Callable[[], object], theirs: Callable[[], object], repeats: int
) -> tuple[float, float, float]:
    """Medians of both sides' ms and of the per-pair ratio, running them alternately so load hits both."""
    ours(), theirs()
    ours_ms, theirs_ms, ratios = [], [], []
    for repeat in range(repeats):
        pair = {}
        for name, run in (
            (("ours", ours), ("talib", theirs)) if repeat % 2 == 0 else (("talib", theirs), ("ours", ours))
        ):
            start = time.perf_counter()
            run()
            pair[name] = time.perf_counter() - start
        ours_ms.append(pair["ours"] * 1000.0)
        theirs_ms.append(pair["talib"] * 1000.0)
        ratios.append(pair["ours"] / pair["talib"])
    return statistics.median(ours_ms), statistics.median(theirs_ms), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    scale = 1_000_000 / args.rows

    candles = generate_candles("BTCUSD", "1h", rows=args.rows, seed=1)
    prices = Prices.from_candles(candles)
    print(f"{args.rows:,} candles, median of {args.repeats} runs, ms per million candles")

    for spec in REFERENCE_SET:
        ms = median_ms(partial(indicators.compute, prices, spec), args.repeats) * scale
        print(f"  {spec.id:<16} {ms:8.1f}")

    def reference_set() -> None:
        for spec in REFERENCE_SET:
            indicators.compute(prices, spec)

    ours, theirs, ratio = paired_ms(reference_set, partial(talib_reference_set, prices), args.repeats)
    print(
        f"indicator set    {ours * scale:8.1f} ms  vs TA-Lib {theirs * scale:.1f} ms in the same run: "
        f"{ratio:.2f}x TA-Lib (median of {args.repeats} paired ratios)"
    )

    for path in sorted(STRATEGIES.glob("*.yaml")):
        config = load_strategy_file(path)
        ms = median_ms(partial(build_features, candles, config), args.repeats) * scale
        n_features = len(build_features(candles.iloc[:1000], config).names)
        print(
            f"pipeline {config.name:<16} {ms:8.1f} ms  (indicators + fuzzy + {n_features} features; "
            f"{ms / (theirs * scale):.1f}x TA-Lib's indicator set)"
        )


if __name__ == "__main__":
    main()
