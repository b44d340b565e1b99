"""Table files (CSV and Parquet): the preview read in chunks, the upload checks, Parquet for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.contracts.training import TabularTask
from shared.trainkit.errors import DataError
from shared.trainkit.workloads import table_files
from shared.trainkit.workloads.table_files import check_table, preview_table
from shared.trainkit.workloads.tabular_data import load_tabular


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, None, 22, 60, 38],
            "city": ["Oslo", "Rome", "Oslo", None, "Lima", "Rome"],
            "member": [True, False, True, True, False, False],
            "spend": [10.5, 3.25, 8.0, 1.0, 12.75, 4.5],
            "churned": ["no", "yes", "no", "yes", "no", "yes"],
        }
    )


def test_csv_and_parquet_previews_agree_on_columns_dtypes_rows_and_missing(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "t.csv", index=False)
    frame().to_parquet(tmp_path / "t.parquet", index=False)
    for name in ("t.csv", "t.parquet"):
        preview = preview_table(tmp_path / name, name)
        assert preview.rows == 6
        assert [(c.name, c.dtype, c.missing) for c in preview.columns] == [
            ("age", "float64", 1),
            ("city", "string", 1),
            ("member", "bool", 0),
            ("spend", "float64", 0),
            ("churned", "string", 0),
        ]
        assert preview.sample[0] == [31.0, "Oslo", True, 10.5, "no"]
        assert preview.sample[2][0] is None
        assert len(preview.sample) == table_files.SAMPLE_ROWS
    assert preview_table(tmp_path / "t.csv", "t.csv").format == "csv"
    assert preview_table(tmp_path / "t.parquet", "t.parquet").format == "parquet"


def test_a_preview_counts_rows_and_merges_dtypes_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table_files, "CHUNK_ROWS", 4)
    rows = ["n,x"] + [f"{i},{i}" for i in range(9)] + ["9,1.5", "10,"]
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    preview = preview_table(tmp_path / "c.csv", "c.csv")
    assert preview.rows == 11
    assert [(c.name, c.dtype, c.missing) for c in preview.columns] == [
        ("n", "int64", 0),
        ("x", "float64", 1),
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1.5,2,3\n4,5,6\n", "has no header"),
        ("a,b,a\n1,2,3\n", "'a' appears 2 times"),
        ("a,,c\n1,2,3\n", "column 2 of the header has no name"),
        ("", "is empty"),
        ("a,b\n", "no data rows"),
        ("a,b,c\n1,,3\n4,,6\n", "column 'b' has no value on any of its 2 rows"),
    ],
)
def test_a_bad_csv_upload_is_refused_naming_what_to_fix(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=words) as caught:
        check_table(tmp_path / "bad.csv", "bad.csv")
    assert caught.value.details["field"] == "file"


def test_a_file_named_parquet_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="is not a Parquet file") as caught:
        check_table(tmp_path / "t.parquet", "t.parquet")
    assert caught.value.details["field"] == "file"


def test_a_truncated_parquet_file_is_refused(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "t.parquet", index=False)
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[:40] + data[-8:])
    with pytest.raises(DataError, match="Parquet"):
        check_table(tmp_path / "cut.parquet", "cut.parquet")


def test_the_tabular_loader_reads_parquet_like_csv(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "t.csv", index=False)
    frame().to_parquet(tmp_path / "t.parquet", index=False)
    from_csv = load_tabular(tmp_path, "t.csv", "churned", TabularTask.CLASSIFICATION)
    from_parquet = load_tabular(tmp_path, "t", "churned", TabularTask.CLASSIFICATION)
    assert from_parquet.dataset == "t"
    assert from_parquet.feature_names == from_csv.feature_names
    np.testing.assert_allclose(from_parquet.X, from_csv.X)
    assert from_parquet.y.tolist() == from_csv.y.tolist()


def test_training_refuses_a_csv_whose_header_repeats_a_name(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,x,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match="'x' appears 2 times"):
        load_tabular(tmp_path, "d.csv", "y", TabularTask.CLASSIFICATION)


@pytest.mark.parametrize(
    ("target", "task", "words"),
    [
        ("nope", TabularTask.CLASSIFICATION, "no target column 'nope'; pick one of its columns: x, c, k"),
        ("c", TabularTask.REGRESSION, "same value 7.0 on every row"),
        ("k", TabularTask.CLASSIFICATION, "single class 'a'"),
    ],
)
def test_a_bad_target_names_the_field(tmp_path: Path, target: str, task: TabularTask, words: str) -> None:
    (tmp_path / "d.csv").write_text("x,c,k\n1,7,a\n2,7,a\n3,7,a\n")
    with pytest.raises(DataError, match=words) as caught:
        load_tabular(tmp_path, "d.csv", target, task)
    assert caught.value.details["field"] == "tabular.target"
