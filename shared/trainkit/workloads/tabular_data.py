"""Loading a tabular CSV or Parquet file into a feature matrix and a target vector (numpy and pandas; no torch).

Feature rules, in column order:

- numeric and boolean columns are used as they are; missing values are filled with the column median
  (counted in ``imputed_values``; the median is taken over all rows, a deliberate, small leak that keeps
  ``X`` free of NaN for any downstream scaler);
- text columns are one-hot encoded as ``column=value``: the :data:`MAX_CATEGORIES` most frequent values
  get a column each and any rarer value shares ``column=__other__``; a missing value is all zeros;
  a text column whose every value is distinct (an identifier) is skipped with a warning;
- a text column whose values are nearly all numbers (>= 90 %) is taken for a numeric column with typos
  and rejected, naming the first bad row, rather than silently one-hot encoded.

Rows are named by their line in the file (the header is line 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shared.contracts.training import TabularTask
from shared.trainkit.errors import DataError, DataNotFoundError
from shared.trainkit.workloads.table_files import TABLE_SUFFIXES, read_table

MAX_CLASSES = 200
MAX_CATEGORIES = 20
LOOKS_NUMERIC = 0.9
_HEADER_LINES = 2  # index label 0 is line 2 of the file


@dataclass(frozen=True)
class TabularData:
    """``X`` float32 (rows x features); ``y`` int64 class indices (classification) or float32 values.
    ``normalization`` stays ``None`` here: :func:`standardize` computes it on the train rows."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str]
    task: TabularTask
    dataset: str
    dropped_rows: int = 0
    imputed_values: int = 0
    warnings: list[str] = field(default_factory=list)
    normalization: dict[str, list[float]] | None = None


def load_tabular(data_dir: Path, dataset: str, target: str, task: TabularTask) -> TabularData:
    """Read ``data_dir/dataset`` and split it into features and ``target``; errors name file/column/row."""
    path = resolve_dataset(data_dir, dataset)
    frame = read_table(path, dataset)
    if target not in frame.columns:
        raise DataError(
            f"{dataset} has no target column {target!r}; pick one of its columns: "
            f"{', '.join(map(str, frame.columns))}",
            file=dataset,
            field="tabular.target",
            column=target,
            available=[str(c) for c in frame.columns],
        )
    missing = frame[target].isna()
    dropped = int(missing.sum())
    if dropped == len(frame):
        raise DataError(
            f"{dataset}: every row misses the target {target!r}; pick a column that has values",
            file=dataset,
            field="tabular.target",
            column=target,
        )
    frame = frame.loc[~missing]
    warnings = [f"dropped {dropped} row(s) of {dataset} with no {target!r} value"] if dropped else []
    if task is TabularTask.CLASSIFICATION:
        y, class_names = _encode_classes(frame[target], dataset, target)
    else:
        y, class_names = _regression_target(frame[target], dataset, target), []
    features = build_features(frame.drop(columns=[target]), dataset)
    return TabularData(
        X=features.matrix,
        y=y,
        feature_names=features.names,
        class_names=class_names,
        task=task,
        dataset=dataset,
        dropped_rows=dropped,
        imputed_values=features.imputed_values,
        warnings=warnings + features.warnings,
    )


def resolve_dataset(data_dir: Path, dataset: str) -> Path:
    """The table file ``dataset`` names inside ``data_dir`` (``.csv`` or ``.parquet`` may be omitted);
    never a path outside it."""
    root = Path(data_dir).resolve()
    if not dataset or Path(dataset).is_absolute() or not (root / dataset).resolve().is_relative_to(root):
        raise DataError(
            f"dataset {dataset!r} must name a file inside the data folder {root}",
            file=dataset,
            field="dataset",
        )
    candidate = (root / dataset).resolve()
    if not candidate.is_file() and not candidate.suffix:
        candidate = next(
            (found for s in TABLE_SUFFIXES if (found := candidate.with_suffix(s)).is_file()), candidate
        )
    if not candidate.is_file():
        known = (
            sorted(p.name for p in root.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
            if root.is_dir()
            else []
        )
        raise DataNotFoundError(
            f"dataset {dataset!r} not found in {root}; table files there: {', '.join(known) or '(none)'}",
            file=dataset,
            available=known,
        )
    return candidate


def _encode_classes(series: pd.Series, dataset: str, target: str) -> tuple[np.ndarray, list[str]]:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = sorted(series.unique().tolist())
        names = [_class_name(v) for v in values]
    else:
        series = series.astype(str)
        values = sorted(series.unique().tolist())
        names = [str(v) for v in values]
    if len(values) < 2:
        raise DataError(
            f"target {target!r} of {dataset} has a single class {names[0]!r}; "
            "a classifier needs at least two; pick another target or add rows of other classes",
            file=dataset,
            field="tabular.target",
            column=target,
        )
    if len(values) > MAX_CLASSES:
        raise DataError(
            f"target {target!r} of {dataset} has {len(values)} distinct values (more than {MAX_CLASSES} "
            "classes); use task 'regression' for a continuous target",
            file=dataset,
            column=target,
        )
    codes = pd.Categorical(series, categories=values).codes
    return np.asarray(codes, dtype=np.int64), names


def _class_name(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_line(series: pd.Series, mask: np.ndarray) -> tuple[int, object]:
    """The file line (header is line 1) and value of the first row where ``mask`` is set."""
    position = int(np.argmax(mask))
    return int(series.index[position]) + _HEADER_LINES, series.iloc[position]


def _regression_target(series: pd.Series, dataset: str, target: str) -> np.ndarray:
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.fillna(0.0).to_numpy(dtype=np.float64))
    if bad.any():
        line, value = _first_line(series, bad.to_numpy())
        raise DataError(
            f"target {target!r} of {dataset} must be a finite number for regression; "
            f"line {line} has {value!r}",
            file=dataset,
            field="tabular.target",
            column=target,
            row=line,
        )
    if numbers.nunique() < 2:
        raise DataError(
            f"target {target!r} of {dataset} has the same value {float(numbers.iloc[0])!r} on every row; "
            "a regression needs a target that varies: pick another column",
            file=dataset,
            field="tabular.target",
            column=target,
        )
    return numbers.to_numpy(dtype=np.float32)


@dataclass
class FeatureMatrix:
    matrix: np.ndarray
    names: list[str]
    imputed_values: int = 0
    warnings: list[str] = field(default_factory=list)


def build_features(frame: pd.DataFrame, dataset: str) -> FeatureMatrix:
    """Turn every non-target column into feature columns (rules in the module docstring)."""
    blocks: list[np.ndarray] = []
    result = FeatureMatrix(matrix=np.empty((len(frame), 0), dtype=np.float32), names=[])
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            block = _numeric_block(series.astype(np.float64), dataset, str(column), result)
        else:
            block = _text_block(series, dataset, str(column), result)
        if block is not None:
            blocks.append(block)
    if not blocks:
        raise DataError(
            f"{dataset} has no usable feature columns besides the target (columns: "
            f"{', '.join(map(str, frame.columns)) or '(none)'}); " + " ".join(result.warnings),
            file=dataset,
        )
    result.matrix = np.column_stack(blocks).astype(np.float32)
    return result


def _numeric_block(series: pd.Series, dataset: str, column: str, result: FeatureMatrix) -> np.ndarray | None:
    values = series.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        line, _ = _first_line(series, infinite)
        raise DataError(
            f"{dataset}: column {column!r} has an infinite value on line {line}; replace it with a number",
            file=dataset,
            column=column,
            row=line,
        )
    missing = np.isnan(values)
    if missing.all():
        result.warnings.append(f"skipped column {column!r} of {dataset}: it has no values")
        return None
    if missing.any():
        values = np.where(missing, float(np.median(values[~missing])), values)
        result.imputed_values += int(missing.sum())
    result.names.append(column)
    return values[:, None]


def _text_block(series: pd.Series, dataset: str, column: str, result: FeatureMatrix) -> np.ndarray | None:
    present = series.notna()
    numbers = pd.to_numeric(series.where(present), errors="coerce")
    parsed = numbers.notna()
    if present.any() and parsed.sum() >= LOOKS_NUMERIC * present.sum():
        line, value = _first_line(series, (present & ~parsed).to_numpy())
        raise DataError(
            f"{dataset}: column {column!r} is numeric but line {line} has {value!r}; fix or blank that value",
            file=dataset,
            column=column,
            row=line,
        )
    text = series.where(present).astype(object)
    counts = text.value_counts()
    if len(counts) > MAX_CATEGORIES and len(counts) == int(present.sum()):
        result.warnings.append(f"skipped column {column!r} of {dataset}: every value is distinct (an id?)")
        return None
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    kept = [value for value, _ in ranked[:MAX_CATEGORIES]]
    columns = [(text == value).to_numpy() for value in kept]
    result.names.extend(f"{column}={value}" for value in kept)
    if len(ranked) > MAX_CATEGORIES:
        columns.append((present & ~text.isin(kept)).to_numpy())
        result.names.append(f"{column}=__other__")
    return np.column_stack(columns).astype(np.float64)
