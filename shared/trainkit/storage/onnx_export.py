"""A stored strategy or tabular model as an ONNX graph, for onnxruntime or any other ONNX tool.

The graph is the model as modelyard predicts with it, standardisation included: input ``features``
(float32, ``[batch, input_dim]``, the feature values as computed — not normalised; a NaN counts as the
training mean, as in training), output ``logits`` (``[batch, classes]``) for classification or
``prediction`` for regression, in the target's own units. The standardisation runs in float64 inside the
graph, so a feature far from zero (a price) loses no precision to it. The model's metadata props carry
what a caller needs around it: ``modelyard.features`` (names, normalisation, class names as JSON),
``modelyard.inputs`` (``raw``), the strategy, name, version and the weights' config hash.

What cannot be exported is refused with :class:`ExportError` saying why: a command training's model is
a folder of files its own program wrote, and a plugin's class lives in the user's package with an input
that ``config.json`` does not describe. ``onnx`` is an optional extra: without it the export raises
:class:`ExportUnavailableError` naming it.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from shared.trainkit.errors import ExportError, ExportUnavailableError, StorageError
from shared.trainkit.model_file import find_model_file
from shared.trainkit.storage.model_loading import LoadedModel
from shared.trainkit.storage.model_storage import FILES_DIR, ModelStorage

INPUT_NAME = "features"
#: Opset 17 is read by every onnxruntime released since 2022.
OPSET = 17


def export_stored_model(storage: ModelStorage, strategy: str, name: str, version: int) -> bytes:
    """The ONNX bytes of one stored version, after every file was checked as a load checks it."""
    label = f"{strategy}/{name} v{version}"
    folder = storage.version_dir(strategy, name, version)
    metadata = storage.load_json(strategy, name, version, "metadata")
    if metadata.get("workload") == "command" or (
        find_model_file(folder) is None and (folder / FILES_DIR).is_dir()
    ):
        raise ExportError(
            f"{label} comes from a command training: its model is the folder of files the user's "
            "program wrote, not weights modelyard can describe as a graph; download the version's "
            "archive instead",
            strategy=strategy,
            name=name,
            version=version,
            reason="command_model",
        )
    config = storage.load_json(strategy, name, version, "config")
    raw_spec = config.get("model")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    if "plugin" in config or "input_dim" not in spec:
        model_class = spec.get("model_class")
        raise ExportError(
            f"{label} is a plugin model (class {model_class!r}): ONNX needs the network's code and an "
            "example input, and both live in the plugin's own package, which config.json does not "
            "describe; export it with torch.onnx.export in the plugin's code, loading the weights with "
            "safetensors",
            strategy=strategy,
            name=name,
            version=version,
            reason="plugin_model",
        )
    _require_onnx()
    try:
        loaded = storage.load_model(strategy, name, version)
    except StorageError as exc:
        raise ExportError(f"{label} cannot be exported: {exc.message}", **exc.details) from exc
    return onnx_bytes(loaded)


def onnx_bytes(loaded: LoadedModel) -> bytes:
    """Trace ``loaded``'s network into ONNX with a dynamic batch axis and modelyard's metadata."""
    onnx = _require_onnx()
    spec = loaded.module.spec
    module = _Served(loaded.module.eval(), loaded.features.get("normalization") or {}, spec.input_dim)
    output = "logits" if spec.task == "classification" else "prediction"
    example = torch.zeros(1, spec.input_dim, dtype=torch.float32)
    label = f"{loaded.version.strategy}/{loaded.version.name} v{loaded.version.version}"
    try:
        # The TorchScript exporter: no onnxscript dependency, and exact for an MLP's Gemm/activations.
        # It warns that it is deprecated; the warning is ours to silence, not the caller's to see.
        with warnings.catch_warnings(), torch.no_grad(), tempfile.TemporaryDirectory() as folder:
            warnings.simplefilter("ignore")
            target = Path(folder) / "model.onnx"
            torch.onnx.export(
                module,
                (example,),
                target,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[output],
                dynamic_axes={INPUT_NAME: {0: "batch"}, output: {0: "batch"}},
                opset_version=OPSET,
            )
            exported = target.read_bytes()
    except Exception as exc:  # the exporter raises many kinds; each means "ONNX cannot express this"
        raise ExportError(
            f"{label} cannot be expressed in ONNX: {type(exc).__name__}: {exc}", reason="unsupported"
        ) from exc
    graph = onnx.load_from_string(exported)
    for key, value in _metadata(loaded).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    graph.producer_name = "modelyard"
    result: bytes = graph.SerializeToString()
    return result


class _Served(torch.nn.Module):
    """The network with the training's standardisation before it (and, for a scaled regression target,
    its inverse after it): what the graph computes from raw features."""

    def __init__(self, net: torch.nn.Module, normalization: dict[str, Any], width: int) -> None:
        super().__init__()
        self.net = net
        mean, std = normalization.get("mean"), normalization.get("std")
        if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == width):
            mean, std = [0.0] * width, [1.0] * width
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.target: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float64))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float64))
        target = normalization.get("target")
        self.scaled_target = isinstance(target, list) and len(target) == 2
        self.register_buffer(
            "target", torch.tensor(target if self.scaled_target else [0.0, 1.0], dtype=torch.float64)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = ((x.double() - self.mean) / self.std).float()
        out: torch.Tensor = self.net(torch.where(torch.isnan(z), torch.zeros_like(z), z))
        if self.scaled_target:
            out = (out.double() * self.target[1] + self.target[0]).float()
        return out


def _metadata(loaded: LoadedModel) -> dict[str, str]:
    version = loaded.version
    return {
        "modelyard.strategy": version.strategy,
        "modelyard.name": version.name,
        "modelyard.version": str(version.version),
        "modelyard.model_class": loaded.header.model_class,
        "modelyard.config_hash": loaded.header.config_hash,
        "modelyard.task": loaded.module.spec.task,
        "modelyard.features": json.dumps(_features(loaded.features), sort_keys=True, default=str),
        "modelyard.inputs": "raw",
    }


def _features(features: dict[str, Any]) -> dict[str, Any]:
    return {key: features[key] for key in ("names", "normalization", "class_names") if key in features}


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ExportUnavailableError(
            "ONNX export needs the optional 'onnx' extra: pip install 'modelyard[onnx]'",
            extra="onnx",
        ) from exc
    return onnx
