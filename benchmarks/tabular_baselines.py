"""modelyard's tabular defaults vs scikit-learn on scikit-learn's bundled datasets, same splits, one run.

For each dataset the CSV is written into a data folder and trained through the product's own path
(TrainingExecutor, tabular workload, no overrides: the defaults); scikit-learn's LogisticRegression /
Ridge (after a StandardScaler) is fitted on the very rows the workload trained on (its train and
validation splits, rebuilt with the same seeded permutation) and scored on the same test rows.
Goal: within 2 accuracy points (classification) or 0.05 R² (regression).

Usage: python benchmarks/tabular_baselines.py [--seeds 42 7 123]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.contracts.training import TabularSpec, TabularTask, TrainingOverrides, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.tabular import split_indices

DATASETS = {
    "breast_cancer": (load_breast_cancer, TabularTask.CLASSIFICATION),
    "wine": (load_wine, TabularTask.CLASSIFICATION),
    "diabetes": (load_diabetes, TabularTask.REGRESSION),
}


def frame_of(loader: object) -> pd.DataFrame:
    bunch = loader()  # type: ignore[operator]
    frame = pd.DataFrame(bunch.data, columns=[str(c).replace(" ", "_") for c in bunch.feature_names])
    frame["target"] = bunch.target
    return frame


def ours(root: Path, name: str, task: TabularTask, seed: int) -> float:
    executor = TrainingExecutor(root / "data", ModelStorage(root / "models"))
    request = TrainingRequest(
        workload="tabular",
        tabular=TabularSpec(dataset=f"{name}.csv", target="target", task=task),
        overrides=TrainingOverrides(seed=seed),
    )
    result = executor.execute(request, lambda _u: None, CancelToken())
    metric = "accuracy" if task is TabularTask.CLASSIFICATION else "r2"
    return float(result.test_metrics[metric])


def theirs(frame: pd.DataFrame, task: TabularTask, seed: int) -> float:
    x = frame.drop(columns=["target"]).to_numpy(dtype=np.float64)
    y = frame["target"].to_numpy()
    train, val, test = split_indices(len(frame), seed)
    fit_rows = np.concatenate([train, val])
    if task is TabularTask.CLASSIFICATION:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        model.fit(x[fit_rows], y[fit_rows])
        return float(accuracy_score(y[test], model.predict(x[test])))
    model = make_pipeline(StandardScaler(), Ridge())
    model.fit(x[fit_rows], y[fit_rows])
    return float(r2_score(y[test], model.predict(x[test])))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 123])
    args = parser.parse_args()
    print(
        f"{'dataset':<14} {'metric':<9} {'modelyard':>10} {'sklearn':>10} {'gap':>8}  goal   (median of seeds {args.seeds})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        for name, (loader, task) in DATASETS.items():
            frame = frame_of(loader)
            frame.to_csv(root / "data" / f"{name}.csv", index=False)
            mine = statistics.median(ours(root, name, task, seed) for seed in args.seeds)
            base = statistics.median(theirs(frame, task, seed) for seed in args.seeds)
            classification = task is TabularTask.CLASSIFICATION
            metric, allowed = ("accuracy", 0.02) if classification else ("r2", 0.05)
            gap = mine - base
            verdict = "met" if gap >= -allowed else "missed"
            print(
                f"{name:<14} {metric:<9} {mine:>10.4f} {base:>10.4f} {gap:>+8.4f}  {verdict} (>= -{allowed})"
            )


if __name__ == "__main__":
    main()
