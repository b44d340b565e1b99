"""Candle CSVs: loading, every kind of bad file (named file, column, row), date ranges, listing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.trainkit.errors import DataError, DataNotFoundError
from shared.trainkit.workloads.strategy.candles import (
    candle_path,
    list_datasets,
    load_candles,
    validate_candle_csv,
)

HEADER = "timestamp,open,high,low,close,volume\n"
ROWS = [
    "2024-01-01T00:00:00Z,1.0,1.2,0.9,1.1,100",
    "2024-01-02T00:00:00Z,1.1,1.3,1.0,1.2,120",
    "2024-01-03T00:00:00Z,1.2,1.4,1.1,1.3,0",
]


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode()


def _bad(content: bytes) -> DataError:
    with pytest.raises(DataError) as info:
        validate_candle_csv(content, "up.csv")
    assert "up.csv" in info.value.message
    return info.value


def test_valid_csv_loads_as_utc_float_frame() -> None:
    frame = validate_candle_csv(_csv(*ROWS), "x.csv")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "timestamp"
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame["close"].tolist() == [1.1, 1.2, 1.3]


def test_unsorted_rows_are_sorted_and_naive_timestamps_read_as_utc() -> None:
    rows = [r.replace("Z", "") for r in reversed(ROWS)]
    frame = validate_candle_csv(_csv(*rows, header="Date, Open, High, Low, Close, Volume\n"), "x.csv")
    assert frame.index.is_monotonic_increasing
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"


def test_empty_file_is_rejected() -> None:
    assert "empty" in _bad(b"  \n").message


def test_header_without_rows_is_rejected() -> None:
    assert "no rows" in _bad(HEADER.encode()).message


def test_missing_columns_are_named() -> None:
    error = _bad(_csv("2024-01-01,1,1,1,1", header="timestamp,open,high,low,close\n"))
    assert error.details["column"] == "volume"
    assert "volume" in error.message


def test_malformed_csv_is_rejected() -> None:
    _bad(b'timestamp,open\n"2024-01-01,1\n')


def test_unparseable_timestamp_names_row_and_column() -> None:
    error = _bad(_csv(ROWS[0], "yesterday,1,1,1,1,1"))
    assert (error.details["row"], error.details["column"]) == (2, "timestamp")
    assert "row 2" in error.message


def test_nan_price_names_row_and_column() -> None:
    error = _bad(_csv(ROWS[0], ROWS[1], "2024-01-03T00:00:00Z,1.2,1.4,1.1,,5"))
    assert (error.details["row"], error.details["column"]) == (3, "close")
    assert "empty" in error.message
    assert _bad(_csv("2024-01-03T00:00:00Z,1.2,nan,1.1,1.3,5")).details["column"] == "high"
    assert "not a finite number" in _bad(_csv("2024-01-03T00:00:00Z,1.2,abc,1.1,1.3,5")).message


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("2024-01-03T00:00:00Z,-1.2,1.4,1.1,1.3,5", "open"),
        ("2024-01-03T00:00:00Z,1.2,1.4,0,1.3,5", "low"),
        ("2024-01-03T00:00:00Z,1.2,1.4,1.1,1.3,-5", "volume"),
        ("2024-01-03T00:00:00Z,1.2,1.0,1.1,1.05,5", "high"),
    ],
    ids=["negative-open", "zero-low", "negative-volume", "high-below-low"],
)
def test_impossible_values_are_rejected_with_row_and_column(row: str, column: str) -> None:
    error = _bad(_csv(ROWS[0], row))
    assert (error.details["row"], error.details["column"]) == (2, column)


def test_duplicate_timestamp_names_the_repeated_row() -> None:
    error = _bad(_csv(ROWS[0], ROWS[1], ROWS[1]))
    assert error.details["row"] == 3
    assert "repeats" in error.message


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "EURUSD_1d.csv").write_bytes(_csv(*ROWS))
    (tmp_path / "BROKEN_1h.csv").write_text("garbage")
    return tmp_path


def test_candle_path_follows_the_naming_convention_and_rejects_unsafe_names(tmp_path: Path) -> None:
    assert candle_path(tmp_path, "EURUSD", "1h") == tmp_path / "EURUSD_1h.csv"
    with pytest.raises(DataError) as info:
        candle_path(tmp_path, "../etc", "1h")
    assert info.value.details["field"] == "symbol"
    with pytest.raises(DataError) as info:
        candle_path(tmp_path, "EURUSD", "1h/x")
    assert info.value.details["field"] == "timeframe"


def test_missing_dataset_lists_what_exists(data_dir: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_candles(data_dir, "BTCUSD", "1h")
    assert "EURUSD_1d" in info.value.message
    assert "BROKEN" not in info.value.message


def test_date_range_is_inclusive_and_clipped_to_the_data(data_dir: Path) -> None:
    frame = load_candles(data_dir, "EURUSD", "1d", start=date(2024, 1, 2), end=date(2024, 1, 2))
    assert len(frame) == 1
    assert len(load_candles(data_dir, "EURUSD", "1d", start=date(2023, 6, 1))) == 3


def test_dates_outside_the_data_are_rejected(data_dir: Path) -> None:
    with pytest.raises(DataError, match="outside the data, which covers 2024-01-01 to 2024-01-03"):
        load_candles(data_dir, "EURUSD", "1d", start=date(2025, 1, 1))
    with pytest.raises(DataError, match="outside the data"):
        load_candles(data_dir, "EURUSD", "1d", end=date(2023, 1, 1))
    with pytest.raises(DataError, match="after end date"):
        load_candles(data_dir, "EURUSD", "1d", start=date(2024, 1, 3), end=date(2024, 1, 1))


def test_a_range_inside_a_gap_has_no_rows(tmp_path: Path) -> None:
    (tmp_path / "X_1d.csv").write_bytes(_csv(ROWS[0], "2024-03-01T00:00:00Z,1,1,1,1,1"))
    with pytest.raises(DataError, match="no candles between"):
        load_candles(tmp_path, "X", "1d", start=date(2024, 2, 1), end=date(2024, 2, 2))


def test_list_datasets_describes_valid_files_and_skips_broken_ones(data_dir: Path) -> None:
    (info,) = list_datasets(data_dir)
    assert (info.symbol, info.timeframe, info.rows) == ("EURUSD", "1d", 3)
    assert info.start.isoformat() == "2024-01-01T00:00:00+00:00"
    assert info.size_bytes == len(_csv(*ROWS))
    assert len(info.sha256) == 64
    assert info.as_dict()["end"] == "2024-01-03T00:00:00+00:00"


def test_list_datasets_notices_a_changed_file(data_dir: Path) -> None:
    assert list_datasets(data_dir)[0].rows == 3
    (data_dir / "EURUSD_1d.csv").write_bytes(_csv(*ROWS, "2024-01-04T00:00:00Z,1,2,1,1,1"))
    assert list_datasets(data_dir)[0].rows == 4


def test_list_datasets_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_datasets(tmp_path / "nope") == []
