import numpy as np
import pytest

from shared.trainkit.evaluation import classification_report, permutation_importance, regression_report


def test_classification_report_counts_confusion_and_f1() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    report = classification_report(y_true, y_pred, ["BUY", "HOLD", "SELL"])
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["per_class"]["HOLD"]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"]["HOLD"]["recall"] == pytest.approx(1.0)
    assert report["per_class"]["HOLD"]["f1"] == pytest.approx(0.8)


def test_classification_report_handles_absent_class() -> None:
    report = classification_report(np.array([0, 0]), np.array([0, 0]), ["BUY", "HOLD", "SELL"])
    assert report["per_class"]["SELL"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0.0}


def test_regression_report_perfect_fit() -> None:
    y = np.array([1.0, 2.0, 3.0])
    report = regression_report(y, y.copy())
    assert report["mse"] == 0.0
    assert report["r2"] == pytest.approx(1.0)


def test_permutation_importance_ranks_the_informative_feature_first() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3)).astype(np.float32)
    y = (x[:, 1] > 0).astype(np.int64)

    def predict(a: np.ndarray) -> np.ndarray:
        return np.stack([-a[:, 1], a[:, 1]], axis=1)

    importance = permutation_importance(predict, x, y, ["a", "b", "c"], task="classification", seed=0)
    assert next(iter(importance)) == "b"
    assert importance["b"] > 0.3
    assert abs(importance["a"]) < 1e-9
