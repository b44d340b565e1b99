"""ModelStorage.load_model: a stored version becomes a model again, and only an intact one does."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from shared.trainkit.checkpoint import checkpoint_bytes
from shared.trainkit.errors import ModelNotFoundError, StorageError
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.models import MLP, MLPSpec, build_model
from shared.trainkit.storage import LoadedModel, ModelStorage

SPEC = MLPSpec(input_dim=4, output_dim=3, hidden_layers=[8], dropout=0.2)


def _artifact(seed: int, config_extra: dict[str, Any] | None = None) -> tuple[ModelArtifact, MLP]:
    model = build_model(SPEC, generator=torch.Generator().manual_seed(seed))
    config = {"model": SPEC.as_dict(), "training": {"epochs": 3}, **(config_extra or {})}
    payload = checkpoint_bytes(model.state_dict(), model_class=SPEC.model_class, config=config)
    artifact = ModelArtifact(
        strategy="trend",
        name="EURUSD_1h",
        model_bytes=payload,
        config=config,
        metrics={"test": {"accuracy": 0.5}},
        features={"names": ["a", "b", "c", "d"], "class_names": ["BUY", "HOLD", "SELL"]},
        metadata={"device": "cpu"},
    )
    return artifact, model


@pytest.fixture
def store(tmp_path: Path) -> ModelStorage:
    return ModelStorage(tmp_path / "models")


def test_load_model_rebuilds_the_stored_network_with_its_weights(store: ModelStorage) -> None:
    artifact, original = _artifact(seed=1)
    store.save(artifact)
    loaded = store.load_model("trend", "EURUSD_1h", 1)
    assert isinstance(loaded, LoadedModel)
    assert not loaded.module.training
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    original.eval()
    torch.testing.assert_close(loaded.module(x), original(x))
    assert loaded.version.version == 1
    assert loaded.features["class_names"] == ["BUY", "HOLD", "SELL"]
    assert loaded.metadata["version"] == 1
    assert loaded.header.model_class == "MLP"


def test_load_model_without_a_version_loads_the_latest(store: ModelStorage) -> None:
    store.save(_artifact(seed=1)[0])
    artifact, newest = _artifact(seed=2)
    store.save(artifact)
    loaded = store.load_model("trend", "EURUSD_1h")
    assert loaded.version.version == 2
    assert torch.equal(loaded.module.state_dict()["net.0.weight"], newest.state_dict()["net.0.weight"])


@pytest.mark.parametrize("filename", ["model.pt", "config.json", "features.json"])
def test_a_tampered_file_is_a_storage_error_naming_it(store: ModelStorage, filename: str) -> None:
    ref = store.save(_artifact(seed=1)[0])
    path = Path(ref.path) / filename
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError) as caught:
        store.load_model("trend", "EURUSD_1h", 1)
    assert caught.value.details["file"] == filename
    assert filename in caught.value.message


def test_weights_that_do_not_fit_the_stored_config_are_refused(store: ModelStorage) -> None:
    artifact, _ = _artifact(seed=1)
    wider = {**artifact.config, "model": {**SPEC.as_dict(), "hidden_layers": [16]}}
    # the checkpoint's config hash is that of the wider config, so only the shapes disagree
    weights = checkpoint_bytes(build_model(SPEC).state_dict(), model_class=SPEC.model_class, config=wider)
    mismatched = replace(artifact, config=wider, model_bytes=weights)
    store.save(mismatched)
    with pytest.raises(StorageError) as caught:
        store.load_model("trend", "EURUSD_1h", 1)
    assert caught.value.details["file"] == "model.pt"


def test_a_plugin_model_cannot_be_rebuilt_by_the_store(store: ModelStorage) -> None:
    config = {"plugin": "pkg.mod:make", "model": {"model_class": "pkg.mod.Net"}}
    weights = checkpoint_bytes({}, model_class="pkg.mod.Net", config=config)
    store.save(ModelArtifact("plugin", "pkg.mod-make", weights, config, {}, {}, {}))
    with pytest.raises(StorageError, match="load_weights") as caught:
        store.load_model("plugin", "pkg.mod-make", 1)
    assert caught.value.details["file"] == "config.json"


def test_loading_an_unknown_version_lists_the_stored_ones(store: ModelStorage) -> None:
    store.save(_artifact(seed=1)[0])
    with pytest.raises(ModelNotFoundError, match="stored versions: 1"):
        store.load_model("trend", "EURUSD_1h", 7)


def test_the_store_does_not_import_the_executor() -> None:
    code = "import sys, shared.trainkit.storage; print('shared.trainkit.executor.executor' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
