"""``indicators.warm_up`` loads the kernels for the argument types a training passes: after it, the
indicators of candles read from a CSV file (read-only arrays under pandas' copy-on-write) need no kernel
of a new type, so a process forked after the warm-up loads or compiles nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shared.trainkit.workloads.strategy import indicators, kernels
from shared.trainkit.workloads.strategy.sample_data import write_sample_data


def _signatures() -> dict[str, list[object]]:
    return {name: list(getattr(kernels, name).signatures) for name in dir(kernels) if name.endswith("_into")}


def test_a_trainings_candles_need_no_kernel_beyond_the_warm_up(tmp_path: Path) -> None:
    indicators.warm_up()
    warmed = _signatures()
    assert any(warmed.values())
    write_sample_data(tmp_path, symbols=("EURUSD",), timeframes=("1h",), rows=300)
    prices = indicators.Prices.from_candles(pd.read_csv(next(tmp_path.rglob("*.csv"))))
    for indicator in indicators.CATALOG.values():
        indicator.compute(prices, {name: param.default for name, param in indicator.params.items()})
    assert _signatures() == warmed
