"""Loading tabular CSVs: features, targets, normalisation and errors naming file, column and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.contracts.training import TabularTask
from shared.trainkit.errors import DataError, DataNotFoundError
from shared.trainkit.normalization import standardize
from shared.trainkit.workloads.tabular_data import MAX_CATEGORIES, load_tabular

CLASSIFY = TabularTask.CLASSIFICATION
REGRESS = TabularTask.REGRESSION


def write_csv(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_numeric_features_and_string_classes_are_encoded(tmp_path: Path) -> None:
    write_csv(tmp_path, "iris.csv", "a,b,species\n1,2.5,setosa\n3,4.5,virginica\n5,6.5,setosa\n")
    data = load_tabular(tmp_path, "iris.csv", "species", CLASSIFY)
    assert data.feature_names == ["a", "b"]
    assert data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X, [[1, 2.5], [3, 4.5], [5, 6.5]])
    assert data.class_names == ["setosa", "virginica"]
    assert data.y.dtype == np.int64
    assert data.y.tolist() == [0, 1, 0]
    assert data.normalization is None


def test_numeric_class_labels_keep_their_order_and_integer_names(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,label\n1,10\n2,2\n3,\n4,2\n")
    data = load_tabular(tmp_path, "d.csv", "label", CLASSIFY)
    assert data.class_names == ["2", "10"]
    assert data.y.tolist() == [1, 0, 0]


def test_regression_target_is_float32(tmp_path: Path) -> None:
    write_csv(tmp_path, "houses.csv", "rooms,price\n3,100.5\n4,150\n")
    data = load_tabular(tmp_path, "houses.csv", "price", REGRESS)
    assert data.y.dtype == np.float32
    assert data.y.tolist() == [100.5, 150.0]
    assert data.class_names == []


def test_rows_with_missing_target_are_dropped_and_counted(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,y\n1,a\n2,\n3,b\n4,\n")
    data = load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert data.dropped_rows == 2
    assert data.X[:, 0].tolist() == [1.0, 3.0]
    assert "dropped 2 row(s)" in data.warnings[0]


def test_categorical_columns_are_one_hot_encoded(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "color,size,y\nred,1,a\nblue,2,b\nred,3,a\n,4,b\n")
    data = load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert data.feature_names == ["color=red", "color=blue", "size"]
    np.testing.assert_array_equal(data.X[:, :2], [[1, 0], [0, 1], [1, 0], [0, 0]])


def test_categories_beyond_the_cap_share_an_other_column(tmp_path: Path) -> None:
    rows = [f"c{i},{i % 2}" for i in range(MAX_CATEGORIES + 5)] * 2
    write_csv(tmp_path, "d.csv", "cat,y\n" + "\n".join(rows) + "\n")
    data = load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert len(data.feature_names) == MAX_CATEGORIES + 1
    assert data.feature_names[-1] == "cat=__other__"
    assert data.X[:, -1].sum() == 10  # 5 rare categories x 2 rows
    assert (data.X.sum(axis=1) == 1).all()


def test_identifier_like_text_column_is_skipped_with_a_warning(tmp_path: Path) -> None:
    rows = [f"id{i},{i},{i % 2}" for i in range(MAX_CATEGORIES + 2)]
    write_csv(tmp_path, "d.csv", "id,x,y\n" + "\n".join(rows) + "\n")
    data = load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert data.feature_names == ["x"]
    assert any("'id'" in w for w in data.warnings)


def test_missing_numeric_values_are_imputed_with_the_median(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,y\n1,a\n,b\n5,a\n9,b\n")
    data = load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert data.X[:, 0].tolist() == [1.0, 5.0, 5.0, 9.0]
    assert data.imputed_values == 1
    assert not np.isnan(data.X).any()


def test_boolean_columns_are_numeric(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "flag,y\nTrue,1.5\nFalse,2.5\n")
    data = load_tabular(tmp_path, "d.csv", "y", REGRESS)
    assert data.X[:, 0].tolist() == [1.0, 0.0]


def test_dataset_name_may_omit_the_csv_suffix(tmp_path: Path) -> None:
    write_csv(tmp_path, "iris.csv", "x,y\n1,a\n2,b\n")
    assert load_tabular(tmp_path, "iris", "y", CLASSIFY).feature_names == ["x"]


def test_missing_file_lists_the_csv_files_that_exist(tmp_path: Path) -> None:
    write_csv(tmp_path, "iris.csv", "x,y\n1,a\n")
    write_csv(tmp_path, "wine.csv", "x,y\n1,a\n")
    with pytest.raises(DataNotFoundError) as caught:
        load_tabular(tmp_path, "titanic.csv", "y", CLASSIFY)
    assert "titanic.csv" in str(caught.value)
    assert "iris.csv, wine.csv" in str(caught.value)
    assert caught.value.details["file"] == "titanic.csv"


@pytest.mark.parametrize("dataset", ["../secret.csv", "/etc/passwd", "sub/../../secret.csv", ""])
def test_dataset_escaping_the_data_folder_is_rejected(tmp_path: Path, dataset: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_csv(tmp_path, "secret.csv", "x,y\n1,a\n2,b\n")
    with pytest.raises(DataError) as caught:
        load_tabular(data_dir, dataset, "y", CLASSIFY)
    assert not isinstance(caught.value, DataNotFoundError)
    assert caught.value.details["field"] == "dataset"


def test_symlink_pointing_outside_the_data_folder_is_rejected(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_csv(tmp_path, "secret.csv", "x,y\n1,a\n2,b\n")
    (data_dir / "link.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(DataError, match="inside the data folder"):
        load_tabular(data_dir, "link.csv", "y", CLASSIFY)


@pytest.mark.parametrize(("text", "message"), [("", "is empty"), ("x,y\n", "no data rows")])
def test_empty_file_is_a_data_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    write_csv(tmp_path, "empty.csv", text)
    with pytest.raises(DataError, match=message) as caught:
        load_tabular(tmp_path, "empty.csv", "y", CLASSIFY)
    assert caught.value.details["file"] == "empty.csv"


def test_missing_target_column_lists_the_columns(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "sepal,petal,species\n1,2,a\n")
    with pytest.raises(DataError) as caught:
        load_tabular(tmp_path, "d.csv", "Species", CLASSIFY)
    assert "sepal, petal, species" in str(caught.value)
    assert caught.value.details["column"] == "Species"


def test_target_with_a_single_class_is_rejected(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,y\n1,a\n2,a\n3,\n")
    with pytest.raises(DataError, match="single class 'a'") as caught:
        load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert caught.value.details["column"] == "y"


def test_target_missing_on_every_row_is_rejected(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,y\n1,\n2,\n")
    with pytest.raises(DataError, match="every row misses the target"):
        load_tabular(tmp_path, "d.csv", "y", CLASSIFY)


def test_continuous_target_for_classification_suggests_regression(tmp_path: Path) -> None:
    rows = [f"{i},{i * 0.37}" for i in range(300)]
    write_csv(tmp_path, "d.csv", "x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="use task 'regression'"):
        load_tabular(tmp_path, "d.csv", "y", CLASSIFY)


def test_non_numeric_regression_target_names_the_line(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,price\n1,10\n2,cheap\n3,30\n")
    with pytest.raises(DataError) as caught:
        load_tabular(tmp_path, "d.csv", "price", REGRESS)
    assert caught.value.details == {"file": "d.csv", "field": "tabular.target", "column": "price", "row": 3}
    assert "'cheap'" in str(caught.value)


def test_no_usable_feature_columns_is_rejected(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "empty,y\n,a\n,b\n")
    with pytest.raises(DataError, match="no usable feature columns") as caught:
        load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert "'empty'" in str(caught.value)


def test_numeric_column_with_a_typo_names_the_line_and_value(tmp_path: Path) -> None:
    rows = [f"{i},{i % 2}" for i in range(12)]
    rows[7] = "7.5.1,1"
    write_csv(tmp_path, "d.csv", "x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert caught.value.details == {"file": "d.csv", "column": "x", "row": 9}
    assert "'7.5.1'" in str(caught.value)


def test_infinite_feature_value_names_the_line(tmp_path: Path) -> None:
    write_csv(tmp_path, "d.csv", "x,y\n1,a\ninf,b\n")
    with pytest.raises(DataError) as caught:
        load_tabular(tmp_path, "d.csv", "y", CLASSIFY)
    assert caught.value.details["row"] == 3


def test_standardize_uses_train_statistics_only() -> None:
    train = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    test = np.array([[5.0, 7.0]], dtype=np.float32)
    (train_z, test_z), stats = standardize(train, test)
    assert stats == {"mean": [2.0, 5.0], "std": [1.0, 1.0]}  # constant column keeps std 1
    assert train_z.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert test_z.tolist() == [[3.0, 2.0]]
    assert test_z.dtype == np.float32


def test_standardize_fills_missing_values_with_the_train_mean() -> None:
    train = np.array([[1.0], [np.nan], [3.0]])
    other = np.array([[np.nan]])
    (train_z, other_z), stats = standardize(train, other)
    assert stats["mean"] == [2.0]
    assert train_z[:, 0].tolist() == [-1.0, 0.0, 1.0]
    assert other_z.tolist() == [[0.0]]
