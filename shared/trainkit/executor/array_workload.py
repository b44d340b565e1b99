"""The base of the built-in workloads: numpy feature matrices in, the built-in MLP out."""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult
from shared.trainkit.evaluation import (
    Predict,
    classification_report,
    make_predictor,
    permutation_importance,
    regression_report,
)
from shared.trainkit.executor.model_workload import ModelWorkload
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.executor.workload import StepReport
from shared.trainkit.model_file import weights_bytes
from shared.trainkit.models import MLP, MLPSpec, Task, build_model
from shared.trainkit.spi import DataModule, TrainableModule
from shared.trainkit.tensor_data import ArrayDataModule


@dataclass
class PreparedArrays:
    """Feature matrices split in time (or at random for tabular), ready for the built-in MLP."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    feature_names: list[str]
    task: Task
    class_names: list[str] = field(default_factory=list)
    class_weights: list[float] | None = None
    normalization: dict[str, list[float]] = field(default_factory=dict)
    #: Regression: (mean, std) of the train targets; the model learns standardised targets, and
    #: predictions and metrics are turned back into the original units.
    target_scale: tuple[float, float] | None = None


class ArrayWorkload(ModelWorkload):
    """Base of the built-in workloads: numpy features in, the built-in MLP out."""

    hidden_layers: list[int]
    dropout: float = 0.1
    activation: str = "relu"

    def __init__(self, request: TrainingRequest, data_dir: Path) -> None:
        super().__init__(request, data_dir)
        self.hidden_layers = [64, 32]
        self.prepared: PreparedArrays | None = None
        self.spec: MLPSpec | None = None

    def _arrays(self) -> PreparedArrays:
        if self.prepared is None:
            raise RuntimeError("dataset phase has not run")
        return self.prepared

    def create_model(self) -> MLP:
        data = self._arrays()
        self.spec = MLPSpec(
            input_dim=data.train[0].shape[1],
            output_dim=len(data.class_names) if data.task == "classification" else 1,
            hidden_layers=list(self.hidden_layers),
            dropout=self.dropout,
            activation=self.activation,
            task=data.task,
        )
        # The fit's own generator, not the process-wide RNG: parallel trainings stay reproducible.
        generator = torch.Generator().manual_seed(self.params.seed)
        return build_model(self.spec, data.class_weights, generator=generator)

    def data_module(self) -> DataModule:
        data = self._arrays()
        return ArrayDataModule(data.train, data.val, data.test, seed=self.params.seed)

    def predictor(self, module: TrainableModule, device: torch.device) -> Predict:
        """The model's predictions in the target's own units."""
        predict = make_predictor(module, device)
        scale = self._arrays().target_scale
        if scale is None:
            return predict
        mean, std = scale
        return lambda x: predict(x) * std + mean

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The test features and targets, the targets in their own units."""
        data = self._arrays()
        x, y = data.test
        if data.target_scale is None:
            return x, y
        mean, std = data.target_scale
        return x, y * std + mean

    def evaluate(self, module: TrainableModule, device: torch.device) -> dict[str, Any]:
        data = self._arrays()
        x, y = self.test_set()
        out = self.predictor(module, device)(x)
        if data.task == "classification":
            return classification_report(y, out.argmax(axis=1), data.class_names)
        return regression_report(y, out)

    def feature_importance(
        self, module: TrainableModule, device: torch.device, cancel: CancelToken, report: StepReport
    ) -> dict[str, float]:
        data = self._arrays()
        x, y = self.test_set()
        return permutation_importance(
            self.predictor(module, device),
            x,
            y,
            data.feature_names,
            task=data.task,
            seed=self.params.seed,
            cancel=cancel,
            on_feature=lambda done, total: report(done / total, f"feature {done}/{total}"),
        )

    def build_artifact(
        self,
        strategy: str,
        name: str,
        module: TrainableModule,
        fit: FitResult,
        test_metrics: dict[str, Any],
        importance: dict[str, float],
        config: dict[str, Any],
    ) -> ModelArtifact:
        data = self._arrays()
        assert self.spec is not None
        model_config = {"model": self.spec.as_dict(), "training": vars(self.params), **config}
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        payload = weights_bytes(state, model_class=self.spec.model_class, config=model_config)
        return ModelArtifact(
            strategy=strategy,
            name=name,
            model_bytes=payload,
            config=model_config,
            metrics={"test": test_metrics, "fit": fit.as_dict()},
            features={
                "names": data.feature_names,
                "normalization": data.normalization,
                "class_names": data.class_names,
                "importance": importance,
            },
            metadata={
                "workload": self.kind,
                "request": self.request.model_dump(mode="json"),
                "device": fit.device,
                "trained_at": datetime.now(UTC).isoformat(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "weights_sha256": hashlib.sha256(payload).hexdigest(),
                "rows": {"train": len(data.train[0]), "val": len(data.val[0]), "test": len(data.test[0])},
            },
        )
