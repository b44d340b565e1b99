"""The tabular workload: any CSV or Parquet file in the data folder with a named target column.

Rows of a generic table carry no time order, so the split is a seeded shuffle (70/15/15 by default);
features are standardised with the train split's statistics only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from shared.contracts.training import TabularSpec, TabularTask, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult
from shared.trainkit.errors import DataError
from shared.trainkit.executor.array_workload import ArrayWorkload, PreparedArrays
from shared.trainkit.executor.model_workload import model_steps
from shared.trainkit.executor.progress import Step
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.executor.workload import StepReport
from shared.trainkit.normalization import standardize
from shared.trainkit.spi import TrainableModule
from shared.trainkit.workloads.strategy.splits import class_weights as inverse_frequency
from shared.trainkit.workloads.tabular_data import TabularData, load_tabular, resolve_dataset

SPLIT = (0.70, 0.15, 0.15)
DEFAULT_EPOCHS = 500
DEFAULT_PATIENCE = 25


def split_indices(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of the train, validation and test splits: a seeded shuffle cut 70/15/15."""
    order = np.random.default_rng(seed).permutation(rows)
    n_train, n_val = int(rows * SPLIT[0]), int(rows * SPLIT[1])
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


class TabularWorkload(ArrayWorkload):
    kind = "tabular"
    steps = model_steps(
        (Step("data_loading", 4, "Loading the table"), Step("dataset", 2, "Splitting and scaling")),
        training=80,
        importance=4,
    )

    def __init__(self, request: TrainingRequest, data_dir: Path) -> None:
        super().__init__(request, data_dir)
        assert request.tabular is not None  # guaranteed by TrainingRequest's validator
        self.spec_in: TabularSpec = request.tabular
        self.hidden_layers = list(self.spec_in.hidden_layers)
        self._table: TabularData | None = None

    def validate(self) -> None:
        self._table = load_tabular(
            self.data_dir, self.spec_in.dataset, self.spec_in.target, self.spec_in.task
        )
        # Defaults that train to convergence: many epochs at most, stopped by validation, and the best
        # epoch's weights kept (tables are small: a fixed short budget underfits, a long one overfits).
        self.params.epochs = DEFAULT_EPOCHS
        self.params.early_stopping_patience = DEFAULT_PATIENCE
        self.params.restore_best_weights = True
        self.apply_overrides()

    def input_files(self) -> list[Path]:
        return [resolve_dataset(self.data_dir, self.spec_in.dataset)]

    def run_phase(self, phase: str, cancel: CancelToken, report: StepReport) -> str:
        if phase == "data_loading":
            if self._table is None:
                self.validate()
            assert self._table is not None
            return f"{len(self._table.X)} rows, {len(self._table.feature_names)} features"
        if phase == "dataset":
            self.prepared = self._split()
            sizes = [len(part[0]) for part in (self.prepared.train, self.prepared.val, self.prepared.test)]
            return "split train/val/test = {}/{}/{}".format(*sizes)
        raise ValueError(f"the tabular workload has no phase {phase!r}")

    def _split(self) -> PreparedArrays:
        table = self._table
        assert table is not None
        n = len(table.X)
        parts = split_indices(n, self.params.seed)
        for name, part in zip(("train", "validation", "test"), parts, strict=True):
            if len(part) == 0:
                raise DataError(
                    f"{self.spec_in.dataset}: {n} usable rows leave the {name} split empty; "
                    "add rows (at least 10 are needed)",
                    file=self.spec_in.dataset,
                    rows=n,
                )
        (x_train, x_val, x_test), stats = standardize(*(table.X[p] for p in parts))
        y_train, y_val, y_test = (table.y[p] for p in parts)
        classification = self.spec_in.task is TabularTask.CLASSIFICATION
        target_scale = None
        if not classification:
            # Standardised targets: a raw target in the hundreds leaves an MLP's loss dominated by scale.
            mean, std = float(y_train.mean()), float(y_train.std())
            std = std if std > 1e-12 else 1.0
            target_scale = (mean, std)
            y_train, y_val, y_test = ((y - mean) / std for y in (y_train, y_val, y_test))
            stats = {**stats, "target": [mean, std]}
        weights = inverse_frequency(y_train, len(table.class_names)) if classification else None
        return PreparedArrays(
            train=(x_train, y_train),
            val=(x_val, y_val),
            test=(x_test, y_test),
            feature_names=list(table.feature_names),
            task="classification" if classification else "regression",
            class_names=list(table.class_names),
            class_weights=None if weights is None else [float(w) for w in weights],
            normalization=stats,
            target_scale=target_scale,
        )

    def artifact(
        self,
        module: TrainableModule,
        fit: FitResult,
        test_metrics: dict[str, Any],
        importance: dict[str, float],
    ) -> ModelArtifact:
        stem = Path(self.spec_in.dataset).stem
        name = re.sub(r"[^A-Za-z0-9._+-]", "-", f"{stem}_{self.spec_in.target}")
        config = {"tabular": self.spec_in.model_dump(mode="json")}
        return self.build_artifact("tabular", name, module, fit, test_metrics, importance, config)
