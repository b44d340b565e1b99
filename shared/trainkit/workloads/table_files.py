"""Table files of the data folder (CSV or Parquet): reading them whole for training, checking an upload,
and a preview (columns, dtypes, row count, missing values) read in bounded chunks so a file of any size
is described in little memory. numpy, pandas and pyarrow only; no torch.

Checks that hold for every table (upload and training alike): a header line that names every column
once (a first line of numbers only is data, not a header), and a real Parquet file behind a Parquet
name. An upload is also refused when a column has no value on any row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from shared.trainkit.errors import DataError

CSV_SUFFIXES: Final = (".csv",)
PARQUET_SUFFIXES: Final = (".parquet", ".pq")
TABLE_SUFFIXES: Final = CSV_SUFFIXES + PARQUET_SUFFIXES
PARQUET_MAGIC: Final = b"PAR1"
CHUNK_ROWS: Final = 65_536
SAMPLE_ROWS: Final = 5

TableFormat = Literal["csv", "parquet"]
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class ColumnSummary:
    name: str
    dtype: str
    missing: int


@dataclass(frozen=True)
class TablePreview:
    format: TableFormat
    rows: int
    columns: list[ColumnSummary]
    sample: list[list[Scalar]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows": self.rows,
            "columns": [vars(c) for c in self.columns],
            "sample_rows": [list(row) for row in self.sample],
        }


def table_format(path: Path, dataset: str) -> TableFormat:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise DataError(
        f"{dataset} is not a table file: name it .csv or .parquet (got {suffix or 'no suffix'!r})",
        file=dataset,
        field="name",
    )


def read_table(path: Path, dataset: str) -> pd.DataFrame:
    """The whole table, after the header checks; DataError naming the file (and column) if unreadable."""
    if table_format(path, dataset) == "parquet":
        frame = _read_parquet(path, dataset)
    else:
        check_csv_header(path, dataset)
        try:
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError as exc:
            raise DataError(
                f"{dataset} is empty; it needs a header line and data rows", file=dataset
            ) from exc
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{dataset} is not a readable CSV: {exc}", file=dataset) from exc
    if frame.empty:
        raise DataError(f"{dataset} has a header but no data rows", file=dataset)
    return frame


def check_table(path: Path, dataset: str) -> TablePreview:
    """An upload's checks: readable, a proper header, data rows, no column without any value."""
    preview = preview_table(path, dataset)
    if preview.rows == 0:
        raise DataError(
            f"{dataset} has a header but no data rows; add rows below the header", file=dataset, field="file"
        )
    for column in preview.columns:
        if column.missing == preview.rows:
            raise DataError(
                f"{dataset}: column {column.name!r} has no value on any of its {preview.rows} rows; "
                "drop that column or fill it in, then upload again",
                file=dataset,
                field="file",
                column=column.name,
            )
    return preview


def preview_table(path: Path, dataset: str) -> TablePreview:
    """Columns with their dtype and missing count, the row count and the first rows, read in chunks."""
    fmt = table_format(path, dataset)
    chunks = _parquet_chunks(path, dataset) if fmt == "parquet" else _csv_chunks(path, dataset)
    rows = 0
    dtypes: dict[str, str] = {}
    missing: dict[str, int] = {}
    sample: list[list[Scalar]] = []
    for chunk in chunks:
        if not dtypes:
            dtypes = {str(c): _dtype(chunk[c]) for c in chunk.columns}
            missing = dict.fromkeys(dtypes, 0)
        rows += len(chunk)
        for column in chunk.columns:
            name = str(column)
            missing[name] += int(chunk[column].isna().sum())
            if len(chunk):
                dtypes[name] = _merge_dtypes(dtypes[name], _dtype(chunk[column]))
        if len(sample) < SAMPLE_ROWS:
            head = chunk.head(SAMPLE_ROWS - len(sample))
            sample.extend([_scalar(v) for v in row] for row in head.itertuples(index=False, name=None))
    columns = [ColumnSummary(name, dtypes[name], missing[name]) for name in dtypes]
    return TablePreview(format=fmt, rows=rows, columns=columns, sample=sample)


def check_csv_header(path: Path, dataset: str) -> list[str]:
    """The header's column names; DataError for an empty file, a first line of numbers only (no
    header), a blank name or a name used twice."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        try:
            first = next(csv.reader(handle), None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{dataset} is not a readable CSV: {exc}", file=dataset, field="file") from exc
    if not first or not any(cell.strip() for cell in first):
        raise DataError(
            f"{dataset} is empty; it needs a header line naming the columns, then data rows",
            file=dataset,
            field="file",
        )
    names = [cell.strip() for cell in first]
    if all(_is_number(name) for name in names):
        raise DataError(
            f"{dataset} has no header: its first line ({', '.join(names[:5])}) is data; add a first line "
            "naming each column (e.g. sepal_length,sepal_width,species)",
            file=dataset,
            field="file",
        )
    check_column_names(names, dataset)
    return names


def check_column_names(names: list[str], dataset: str) -> None:
    for position, name in enumerate(names, start=1):
        if not name:
            raise DataError(
                f"{dataset}: column {position} of the header has no name; name every column",
                file=dataset,
                field="file",
                column=position,
            )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{dataset}: column name {name!r} appears {names.count(name)} times in the header; "
                "rename the copies so each column has its own name",
                file=dataset,
                field="file",
                column=name,
            )
        seen.add(name)


def _csv_chunks(path: Path, dataset: str) -> Iterator[pd.DataFrame]:
    names = check_csv_header(path, dataset)
    try:
        reader = pd.read_csv(path, chunksize=CHUNK_ROWS)
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        yield pd.DataFrame(columns=names)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{dataset} is not a readable CSV: {exc}", file=dataset, field="file") from exc


def _open_parquet(path: Path, dataset: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        head = handle.read(len(PARQUET_MAGIC))
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - len(PARQUET_MAGIC)))
        tail = handle.read()
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC or size < 3 * len(PARQUET_MAGIC):
        raise DataError(
            f"{dataset} is not a Parquet file (it lacks the PAR1 marks a Parquet file starts and ends "
            "with); upload a file written by a Parquet writer (e.g. pandas.DataFrame.to_parquet), or "
            "name a CSV file .csv",
            file=dataset,
            field="file",
        )
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{dataset} is not a readable Parquet file: {exc}", file=dataset, field="file"
        ) from exc
    check_column_names([str(n) for n in parquet.schema_arrow.names], dataset)
    return parquet


def _parquet_chunks(path: Path, dataset: str) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    parquet = _open_parquet(path, dataset)
    try:
        if parquet.metadata.num_rows == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
            return
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{dataset} is not a readable Parquet file: {exc}", file=dataset, field="file"
        ) from exc


def _read_parquet(path: Path, dataset: str) -> pd.DataFrame:
    import pyarrow as pa

    parquet = _open_parquet(path, dataset)
    try:
        frame: pd.DataFrame = parquet.read().to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{dataset} is not a readable Parquet file: {exc}", file=dataset, field="file"
        ) from exc
    return frame


def _dtype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_float_dtype(series):
        # a chunk of a numeric column whose values are all missing reads as float: keep it neutral
        return "float64" if series.notna().any() else "empty"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string" if series.notna().any() else "empty"


def _merge_dtypes(seen: str, chunk: str) -> str:
    """One column's dtype over chunks: integers with floats are floats; any other mix is text."""
    if seen == chunk or chunk == "empty":
        return seen
    if seen == "empty":
        return chunk
    if {seen, chunk} == {"int64", "float64"}:
        return "float64"
    return "string"


def _scalar(value: object) -> Scalar:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
