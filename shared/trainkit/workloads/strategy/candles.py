"""OHLCV candle files: ``{data_dir}/{SYMBOL}_{TIMEFRAME}.csv`` with a header
``timestamp,open,high,low,close,volume`` (ISO-8601 timestamps; naive ones are read as UTC).

Loading returns a frame with a UTC ``DatetimeIndex`` named ``timestamp`` and float64 price/volume
columns, sorted, without duplicates. Every defect raises :class:`DataError` naming the file, the
column and the row (row 1 is the first line after the header).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.trainkit.errors import DataError, DataNotFoundError

logger = logging.getLogger(__name__)

COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
TIMESTAMP_ALIASES = ("timestamp", "datetime", "date", "time")
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


def candle_path(data_dir: Path, symbol: str, timeframe: str) -> Path:
    for field, value in (("symbol", symbol), ("timeframe", timeframe)):
        if not isinstance(value, str) or not _SAFE.match(value) or value in (".", ".."):
            raise DataError(
                f"{field} {value!r} is not a valid name: use 1-32 letters, digits, '.', '_' or '-' "
                f"(e.g. EURUSD, 1h)",
                field=field,
                value=value,
            )
    return Path(data_dir) / f"{symbol}_{timeframe}.csv"


def load_candles(
    data_dir: Path, symbol: str, timeframe: str, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """The candles of one dataset, optionally restricted to ``start <= day <= end`` (UTC days).

    A range that only partly overlaps the data is clipped to it; a range that misses it entirely, or
    that holds no candle, is a :class:`DataError`.
    """
    path = candle_path(data_dir, symbol, timeframe)
    if not path.is_file():
        available = ", ".join(f"{d.symbol}_{d.timeframe}" for d in list_datasets(data_dir)) or "none"
        raise DataNotFoundError(
            f"no candle data for {symbol} {timeframe}: {path} does not exist. Available: {available}. "
            f"Upload a CSV or generate sample data.",
            file=str(path),
            symbol=symbol,
            timeframe=timeframe,
        )
    frame = validate_candle_csv(path.read_bytes(), str(path))
    return select_dates(frame, start, end, str(path))


def select_dates(frame: pd.DataFrame, start: date | None, end: date | None, name: str) -> pd.DataFrame:
    if start is not None and end is not None and start > end:
        raise DataError(f"start date {start} is after end date {end}", file=name, field="start_date")
    first, last = frame.index[0].date(), frame.index[-1].date()
    if (start is not None and start > last) or (end is not None and end < first):
        raise DataError(
            f"{name}: the requested dates {start or '…'} to {end or '…'} lie outside the data, which covers "
            f"{first} to {last}; choose dates inside that range",
            file=name,
            field="start_date" if start is not None and start > last else "end_date",
        )
    days = pd.DatetimeIndex(frame.index).normalize()
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= days >= pd.Timestamp(start, tz="UTC")
    if end is not None:
        mask &= days <= pd.Timestamp(end, tz="UTC")
    if not mask.any():
        raise DataError(
            f"{name}: no candles between {start} and {end} (the data covers {first} to {last} with a gap "
            f"there); widen the range",
            file=name,
            field="start_date",
        )
    return frame.loc[mask]


def validate_candle_csv(content: bytes, name: str) -> pd.DataFrame:
    """Parse and check candle CSV bytes (a file's or an upload's); return the loaded frame."""
    if not content.strip():
        raise DataError(f"{name} is empty: expected a header {','.join(('timestamp', *COLUMNS))}", file=name)
    try:
        raw = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{name} is not a readable CSV: {exc}", file=name) from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    time_col = next((c for c in TIMESTAMP_ALIASES if c in raw.columns), None)
    missing = [c for c in COLUMNS if c not in raw.columns] + ([] if time_col else ["timestamp"])
    if missing:
        raise DataError(
            f"{name} lacks column(s) {', '.join(missing)}; the header must hold timestamp,"
            f"{','.join(COLUMNS)} (found: {', '.join(raw.columns)})",
            file=name,
            column=missing[0],
        )
    if raw.empty:
        raise DataError(f"{name} has a header but no rows", file=name)
    assert time_col is not None
    index = _timestamps(raw[time_col], name, time_col)
    values = {c: _numbers(raw[c], name, c) for c in COLUMNS}
    frame = pd.DataFrame(values, index=index)
    _check_prices(frame, name)
    return _ordered(frame, name)


def _timestamps(column: pd.Series[str], name: str, col: str) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{name}: row {row + 1}, column {col}: cannot read timestamp {column.iloc[row]!r}; "
            f"use ISO-8601 such as 2024-01-31T14:00:00Z",
            file=name,
            column=col,
            row=row + 1,
        )
    return pd.DatetimeIndex(parsed, name="timestamp")


def _numbers(column: pd.Series[str], name: str, col: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = int(bad[0])
        text = column.iloc[row]
        what = "is empty" if not text.strip() else f"is not a finite number ({text!r})"
        raise DataError(f"{name}: row {row + 1}, column {col} {what}", file=name, column=col, row=row + 1)
    return values


def _check_prices(frame: pd.DataFrame, name: str) -> None:
    for col in PRICE_COLUMNS:
        _fail_at(frame[col].to_numpy() <= 0, name, col, "must be a positive price", frame[col])
    _fail_at(frame["volume"].to_numpy() < 0, name, "volume", "must not be negative", frame["volume"])
    _fail_at(frame["high"].to_numpy() < frame["low"].to_numpy(), name, "high", "is below low", frame["high"])


def _fail_at(
    mask: np.ndarray[Any, np.dtype[np.bool_]], name: str, col: str, what: str, values: pd.Series
) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{name}: row {row + 1}, column {col} {what} (value {values.iloc[row]}); "
            f"{bad.size} row(s) have this problem",
            file=name,
            column=col,
            row=row + 1,
        )


def _ordered(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    duplicated = np.flatnonzero(frame.index.duplicated())
    if duplicated.size:
        row = int(duplicated[0])
        raise DataError(
            f"{name}: row {row + 1}, column timestamp repeats {frame.index[row].isoformat()}; "
            f"remove duplicate candles",
            file=name,
            column="timestamp",
            row=row + 1,
        )
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    return frame


@dataclass(frozen=True)
class DatasetInfo:
    symbol: str
    timeframe: str
    path: Path
    rows: int
    start: datetime
    end: datetime
    sha256: str
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "path": str(self.path),
            "rows": self.rows,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
        }


_cache: dict[Path, tuple[tuple[int, int], DatasetInfo | None]] = {}
_cache_lock = threading.Lock()


def list_datasets(data_dir: Path) -> list[DatasetInfo]:
    """Every valid ``SYMBOL_TIMEFRAME.csv`` in ``data_dir``, sorted; cached by file mtime and size.

    Invalid files are left out (and logged): ``load_candles`` names their defect.
    """
    directory = Path(data_dir)
    if not directory.is_dir():
        return []
    infos = []
    for path in sorted(directory.glob("*_*.csv")):
        info = _dataset_info(path)
        if info is not None:
            infos.append(info)
    return infos


def _dataset_info(path: Path) -> DatasetInfo | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    info = _read_info(path)
    with _cache_lock:
        _cache[path] = (key, info)
    return info


def _read_info(path: Path) -> DatasetInfo | None:
    symbol, _, timeframe = path.stem.rpartition("_")
    try:
        candle_path(path.parent, symbol, timeframe)
        content = path.read_bytes()
        frame = validate_candle_csv(content, str(path))
    except (DataError, OSError) as exc:
        logger.warning("skipping dataset %s: %s", path, exc)
        return None
    return DatasetInfo(
        symbol=symbol,
        timeframe=timeframe,
        path=path,
        rows=len(frame),
        start=frame.index[0].to_pydatetime(),
        end=frame.index[-1].to_pydatetime(),
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
    )
