"""The plugin workload: a user's own TrainableModule + DataModule, named by import path.

Importing code named in a request is remote code execution unless the operator allowed it, so only
modules under a prefix in ``plugin_allowlist`` (a setting) can be named. The factory is called with no
arguments and returns ``(module, data_module)`` or an object with ``module`` and ``data`` attributes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult
from shared.trainkit.errors import ConfigError
from shared.trainkit.executor.model_workload import ModelWorkload, model_steps
from shared.trainkit.executor.progress import Step
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.executor.workload import StepReport
from shared.trainkit.model_file import weights_bytes
from shared.trainkit.seeding import scoped_seed
from shared.trainkit.spi import DataModule, Stage, TrainableModule

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PluginWorkload(ModelWorkload):
    kind = "plugin"
    steps = model_steps((Step("data_loading", 5, "Loading the plugin"),), training=85, importance=0)

    def __init__(self, request: TrainingRequest, data_dir: Path, allowlist: Sequence[str]) -> None:
        super().__init__(request, data_dir)
        self.allowlist = tuple(allowlist)
        self.path = request.plugin or ""
        self._module: TrainableModule | None = None
        self._data: DataModule | None = None

    def validate(self) -> None:
        if not _PATH.match(self.path):
            raise ConfigError(
                f"plugin must look like 'package.module:factory', got {self.path!r}", field="plugin"
            )
        module_name = self.path.split(":", 1)[0]
        if not any(module_name == p or module_name.startswith(p + ".") for p in self.allowlist):
            allowed = ", ".join(self.allowlist) or "none (set MODELYARD_PLUGIN_ALLOWLIST)"
            raise ConfigError(
                f"plugin module {module_name!r} is not allowed; allowed prefixes: {allowed}",
                field="plugin",
            )
        self.apply_overrides()

    def run_phase(self, phase: str, cancel: CancelToken, report: StepReport) -> str:
        if phase == "data_loading":
            self._load()
            assert self._data is not None
            self._data.setup(Stage.FIT)
            return f"plugin {self.path} loaded"
        raise ValueError(f"the plugin workload has no phase {phase!r}")

    def _load(self) -> None:
        module_name, factory_name = self.path.split(":", 1)
        try:
            factory = getattr(importlib.import_module(module_name), factory_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import plugin {self.path}: {exc}", field="plugin") from exc
        with scoped_seed(self.params.seed, torch.device("cpu")):  # the module's initial weights
            made = factory()
        if isinstance(made, tuple) and len(made) == 2:
            module, data = made
        else:
            module, data = getattr(made, "module", made), getattr(made, "data", None)
        if not isinstance(module, TrainableModule) or not isinstance(data, DataModule):
            raise ConfigError(
                f"plugin {self.path} must return (TrainableModule, DataModule), got "
                f"({type(module).__name__}, {type(data).__name__})",
                field="plugin",
            )
        self._module, self._data = module, data

    def create_model(self) -> TrainableModule:
        assert self._module is not None
        return self._module

    def data_module(self) -> DataModule:
        assert self._data is not None
        return self._data

    def evaluate(self, module: TrainableModule, device: torch.device) -> dict[str, Any]:
        assert self._data is not None
        batches = self._data.test_dataloader(self.params.batch_size)
        if batches is None:
            return {}
        module.eval()
        loss_sum, size, correct, has_correct = 0.0, 0, 0, True
        with torch.inference_mode():
            for i, batch in enumerate(batches):
                batch = tuple(t.to(device) for t in batch) if isinstance(batch, tuple | list) else batch
                out = module.validation_step(batch, i)
                loss_sum += float(out.loss) * out.size
                size += out.size
                has_correct = has_correct and out.correct is not None
                correct += out.correct or 0
        metrics: dict[str, Any] = {"loss": loss_sum / size if size else None, "samples": size}
        if has_correct and size:
            metrics["accuracy"] = correct / size
        return metrics

    def artifact(
        self,
        module: TrainableModule,
        fit: FitResult,
        test_metrics: dict[str, Any],
        importance: dict[str, float],
    ) -> ModelArtifact:
        model_class = f"{type(module).__module__}.{type(module).__qualname__}"
        config = {"plugin": self.path, "model": {"model_class": model_class}, "training": vars(self.params)}
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        return ModelArtifact(
            strategy="plugin",
            name=re.sub(r"[^A-Za-z0-9._+-]", "-", self.path),
            model_bytes=weights_bytes(state, model_class=model_class, config=config),
            config=config,
            metrics={"test": test_metrics, "fit": fit.as_dict()},
            features={},
            metadata={
                "workload": self.kind,
                "request": self.request.model_dump(mode="json"),
                "device": fit.device,
            },
        )
