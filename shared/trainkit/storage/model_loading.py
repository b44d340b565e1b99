"""Turning a stored version back into a model: files checked against ``metadata.json`` first, then the
network rebuilt from ``config.json`` and the weights loaded from ``model.safetensors`` (or, for a
version stored before the switch, ``model.pt`` with ``weights_only``).

Only the built-in model can be rebuilt here: a plugin's class lives in the user's package, so its
weights are loaded with :func:`~shared.trainkit.model_file.load_weights` and the plugin's factory.
This module needs no executor: it reads what the store wrote and the model spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from shared.trainkit.checkpoint import CheckpointHeader, config_hash
from shared.trainkit.errors import CheckpointError, ConfigError, StorageError
from shared.trainkit.model_file import WEIGHTS_FILE, find_model_file, load_weights
from shared.trainkit.models import MLP, build_model
from shared.trainkit.storage.integrity import METADATA_FILE, verify_files
from shared.trainkit.storage.records import ModelVersion

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class LoadedModel:
    """A stored version ready to predict: ``module`` is in eval mode on the requested device;
    ``features`` holds the feature names, normalisation and class names it was trained with."""

    module: MLP
    version: ModelVersion
    config: dict[str, Any]
    features: dict[str, Any]
    metadata: dict[str, Any]
    header: CheckpointHeader


def load_stored_model(
    version_dir: Path, version: ModelVersion, map_location: str | torch.device = "cpu"
) -> LoadedModel:
    """Verify every file of ``version_dir``, rebuild the network and load its weights."""
    label = f"{version.strategy}/{version.name} v{version.version}"
    verify_files(version_dir, label)
    config = _json_object(version_dir, CONFIG_FILE, label)
    module = _rebuild(config, label)
    model_file = find_model_file(version_dir)
    if model_file is None:
        raise StorageError(f"{label}: {WEIGHTS_FILE} is missing", file=WEIGHTS_FILE)
    try:
        checkpoint = load_weights(
            model_file,
            expected_model_class=module.spec.model_class,
            expected_config_hash=config_hash(config),
            map_location=map_location,
        )
    except CheckpointError as exc:
        raise StorageError(
            f"{label}: {model_file.name} cannot be loaded: {exc.message}", file=model_file.name
        ) from exc
    try:
        module.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as exc:
        raise StorageError(
            f"{label}: the weights in {model_file.name} do not fit the model {CONFIG_FILE} describes: {exc}",
            file=model_file.name,
        ) from exc
    module.to(map_location)
    module.eval()
    return LoadedModel(
        module=module,
        version=version,
        config=config,
        features=_json_object(version_dir, "features.json", label),
        metadata=_json_object(version_dir, METADATA_FILE, label),
        header=checkpoint.header,
    )


def _rebuild(config: dict[str, Any], label: str) -> MLP:
    spec = config.get("model")
    if not isinstance(spec, dict) or "input_dim" not in spec:
        model_class = spec.get("model_class") if isinstance(spec, dict) else None
        raise StorageError(
            f"{label}: {CONFIG_FILE} describes no built-in model (model class {model_class!r}); a plugin's "
            f"model is rebuilt by its own factory: load {WEIGHTS_FILE} with load_weights instead",
            file=CONFIG_FILE,
        )
    try:
        return build_model(spec)
    except (ConfigError, TypeError, ValueError) as exc:
        raise StorageError(
            f"{label}: the 'model' section of {CONFIG_FILE} cannot rebuild the network: {exc}",
            file=CONFIG_FILE,
        ) from exc


def _json_object(version_dir: Path, filename: str, label: str) -> dict[str, Any]:
    try:
        loaded = json.loads((version_dir / filename).read_bytes())
    except FileNotFoundError as exc:
        raise StorageError(f"{label}: {filename} is missing", file=filename) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise StorageError(f"{label}: {filename} is not valid JSON: {exc}", file=filename) from exc
    if not isinstance(loaded, dict):
        raise StorageError(f"{label}: {filename} is not a JSON object", file=filename)
    return loaded
