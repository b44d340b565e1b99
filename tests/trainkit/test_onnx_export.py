"""ONNX export of stored models: onnxruntime agrees with torch on the same inputs; what cannot be
exported is refused saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from shared.contracts.training import TabularSpec, TrainingOverrides, TrainingRequest, Workload
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.checkpoint import checkpoint_bytes
from shared.trainkit.errors import ExportError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.model_file import weights_bytes
from shared.trainkit.models import MLPSpec, build_model
from shared.trainkit.storage import ModelStorage
from shared.trainkit.storage.onnx_export import export_stored_model

TOLERANCE = 1e-5


def _normalization(width: int, *, target: bool) -> dict[str, Any]:
    """Features far from zero with small spreads (like prices), and a scaled regression target."""
    rng = np.random.default_rng(4)
    stats: dict[str, Any] = {
        "mean": (rng.normal(size=width) * 100 + 1000).tolist(),
        "std": rng.uniform(0.01, 5, size=width).tolist(),
    }
    return {**stats, "target": [250.0, 12.5]} if target else stats


def _store_mlp(
    store: ModelStorage, spec: MLPSpec, *, legacy: bool = False
) -> tuple[torch.nn.Module, dict[str, Any]]:
    model = build_model(spec, generator=torch.Generator().manual_seed(3)).eval()
    config: dict[str, Any] = {"model": spec.as_dict()}
    encode = checkpoint_bytes if legacy else weights_bytes
    normalization = _normalization(spec.input_dim, target=spec.task == "regression")
    store.save(
        ModelArtifact(
            strategy="trend",
            name=f"{spec.task}_{'pt' if legacy else 'st'}",
            model_bytes=encode(model.state_dict(), model_class=spec.model_class, config=config),
            config=config,
            metrics={},
            features={
                "names": [f"f{i}" for i in range(spec.input_dim)],
                "class_names": ["a", "b", "c"],
                "normalization": normalization,
            },
            metadata={"workload": "strategy"},
        )
    )
    return model, normalization


def _max_abs_diff(
    onnx_bytes: bytes, module: torch.nn.Module, normalization: dict[str, Any], x: np.ndarray
) -> float:
    """The graph on raw features against torch on features standardised as training did (in float64,
    NaN as the mean), its output put back in the target's units where the target was scaled."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"features": x})
    mean, std = np.asarray(normalization["mean"]), np.asarray(normalization["std"])
    z = np.nan_to_num((x.astype(np.float64) - mean) / std, nan=0.0).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(z)).numpy()
    if "target" in normalization:
        target_mean, target_std = normalization["target"]
        expected = expected.astype(np.float64) * target_std + target_mean
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected)))


def _inputs(rows: int, normalization: dict[str, Any]) -> np.ndarray:
    """Raw features around the training mean, a few missing."""
    mean, std = np.asarray(normalization["mean"]), np.asarray(normalization["std"])
    x = np.random.default_rng(11).normal(size=(rows, len(mean))) * std + mean
    x[::7, 0] = np.nan
    return x.astype(np.float32)


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("legacy", [False, True], ids=["safetensors", "model.pt"])
def test_onnxruntime_matches_torch_on_the_same_inputs(tmp_path: Path, task: str, legacy: bool) -> None:
    store = ModelStorage(tmp_path / "models")
    spec = MLPSpec(
        input_dim=6, output_dim=3 if task == "classification" else 1, hidden_layers=[16, 8], task=task
    )  # type: ignore[arg-type]
    module, normalization = _store_mlp(store, spec, legacy=legacy)
    data = export_stored_model(store, "trend", f"{task}_{'pt' if legacy else 'st'}", 1)
    # Regression outputs are in the target's units (std 12.5 here): the same relative tolerance.
    tolerance = TOLERANCE * (12.5 if task == "regression" else 1)
    for rows in (1, 37):  # the batch axis is dynamic
        assert _max_abs_diff(data, module, normalization, _inputs(rows, normalization)) <= tolerance


def test_the_graph_names_its_input_output_and_carries_modelyards_metadata(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    _store_mlp(store, MLPSpec(input_dim=6, output_dim=3, hidden_layers=[4]))
    graph = onnx.load_from_string(export_stored_model(store, "trend", "classification_st", 1))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["features"]
    assert [o.name for o in graph.graph.output] == ["logits"]
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["modelyard.strategy"] == "trend"
    assert props["modelyard.version"] == "1"
    assert json.loads(props["modelyard.features"])["class_names"] == ["a", "b", "c"]
    assert props["modelyard.inputs"] == "raw"


def test_a_trained_tabular_regression_exports_and_agrees_with_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["y"] = 3 * frame["a"] - 2 * frame["b"] + rng.normal(scale=0.1, size=300)
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "points.csv", index=False)
    store = ModelStorage(tmp_path / "models")
    request = TrainingRequest(
        workload=Workload.TABULAR,
        tabular=TabularSpec(dataset="points.csv", target="y", task="regression"),
        overrides=TrainingOverrides(epochs=3),
    )
    result = TrainingExecutor(tmp_path / "data", store).execute(request, lambda u: None, CancelToken())
    assert result.model is not None
    ref = result.model
    loaded = store.load_model(ref.strategy, ref.name, ref.version)
    data = export_stored_model(store, ref.strategy, ref.name, ref.version)
    normalization = loaded.features["normalization"]
    assert "target" in normalization  # a scaled regression target: the graph answers in y's units
    target_std = normalization["target"][1]
    x = _inputs(50, normalization)
    assert _max_abs_diff(data, loaded.module, normalization, x) <= TOLERANCE * max(1.0, target_std)


def test_a_command_trainings_files_are_not_exportable(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    produced = tmp_path / "out.bin"
    produced.write_bytes(b"user program output")
    store.save(
        ModelArtifact(
            strategy="toy",
            name="run",
            model_bytes=b"",
            config={},
            metrics={},
            features={},
            metadata={"workload": "command"},
            files={"out.bin": produced},
        )
    )
    with pytest.raises(ExportError, match="command training") as caught:
        export_stored_model(store, "toy", "run", 1)
    assert caught.value.details["reason"] == "command_model"


def test_a_plugin_model_is_refused_saying_why(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    config = {"plugin": "pkg.mod:make", "model": {"model_class": "pkg.mod.Net"}}
    store.save(
        ModelArtifact(
            strategy="plugin",
            name="pkg.mod-make",
            model_bytes=weights_bytes({"w": torch.ones(2)}, model_class="pkg.mod.Net", config=config),
            config=config,
            metrics={},
            features={},
            metadata={"workload": "plugin"},
        )
    )
    with pytest.raises(ExportError, match=r"plugin model \(class 'pkg\.mod\.Net'\): ONNX needs") as caught:
        export_stored_model(store, "plugin", "pkg.mod-make", 1)
    assert caught.value.details["reason"] == "plugin_model"


def test_a_tampered_version_is_not_exported(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    _store_mlp(store, MLPSpec(input_dim=6, output_dim=3, hidden_layers=[4]))
    path = store.version_dir("trend", "classification_st", 1) / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="corrupt"):
        export_stored_model(store, "trend", "classification_st", 1)
