"""model.safetensors: any safetensors reader loads it; modelyard's load still checks what it checked."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save

from shared.trainkit.checkpoint import checkpoint_bytes, config_hash
from shared.trainkit.errors import CheckpointError, StorageError
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.model_file import (
    FORMAT_VERSION,
    load_weights,
    model_file_name,
    read_metadata,
    weights_bytes,
)
from shared.trainkit.models import MLPSpec, build_model
from shared.trainkit.storage import ModelStorage

SPEC = MLPSpec(input_dim=4, output_dim=3, hidden_layers=[8], dropout=0.0)
CONFIG: dict[str, Any] = {"model": SPEC.as_dict(), "training": {"epochs": 2}}


def _model() -> torch.nn.Module:
    return build_model(SPEC, generator=torch.Generator().manual_seed(7)).eval()


def _weights() -> bytes:
    return weights_bytes(_model().state_dict(), model_class="MLP", config=CONFIG)


def _artifact(model_bytes: bytes) -> ModelArtifact:
    return ModelArtifact(
        strategy="trend",
        name="EURUSD_1h",
        model_bytes=model_bytes,
        config=CONFIG,
        metrics={},
        features={"names": ["a", "b", "c", "d"]},
        metadata={"workload": "strategy"},
    )


def test_a_stored_version_is_plain_safetensors_that_load_file_reads(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    ref = store.save(_artifact(_weights()))
    path = Path(ref.path) / "model.safetensors"
    assert not (Path(ref.path) / "model.pt").exists()
    state = load_file(str(path))  # the library's own reader, nothing of modelyard's
    expected = _model().state_dict()
    assert state.keys() == expected.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(state[key], tensor, rtol=0, atol=0)


def test_the_header_carries_modelyards_fields_and_metadata_json_its_sha256(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    ref = store.save(_artifact(_weights()))
    path = Path(ref.path) / "model.safetensors"
    fields = read_metadata(path)
    assert fields["format"] == "modelyard"
    assert fields["format_version"] == str(FORMAT_VERSION)
    assert fields["model_class"] == "MLP"
    assert fields["config_hash"] == config_hash(CONFIG)
    assert fields["modelyard_version"]
    metadata = json.loads((Path(ref.path) / "metadata.json").read_text())
    entry = metadata["files"]["model.safetensors"]
    assert entry == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}


def test_the_store_loads_a_safetensors_version_into_the_network(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    store.save(_artifact(_weights()))
    loaded = store.load_model("trend", "EURUSD_1h", 1)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded.module(x), _model()(x))
    assert loaded.header.model_class == "MLP"


def test_a_model_pt_written_by_the_old_format_still_stores_loads_and_archives(tmp_path: Path) -> None:
    legacy = checkpoint_bytes(_model().state_dict(), model_class="MLP", config=CONFIG)
    assert model_file_name(legacy) == "model.pt"
    store = ModelStorage(tmp_path / "models")
    ref = store.save(_artifact(legacy))
    assert (Path(ref.path) / "model.pt").read_bytes() == legacy
    loaded = store.load_model("trend", "EURUSD_1h", 1)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded.module(x), _model()(x))
    assert b"EURUSD_1h_v1/model.pt" in b"".join(store.archive("trend", "EURUSD_1h", 1))


def test_weights_of_another_class_or_config_are_refused() -> None:
    data = _weights()
    with pytest.raises(CheckpointError, match=r"holds a 'MLP', not the expected 'pkg\.Net'"):
        load_weights(data, expected_model_class="pkg.Net")
    with pytest.raises(CheckpointError, match="another configuration"):
        load_weights(data, expected_config_hash=config_hash({"other": 1}))
    assert load_weights(data, expected_model_class="MLP", expected_config_hash=config_hash(CONFIG))


@pytest.mark.parametrize("where", ["index", "data"])
def test_a_flipped_byte_is_caught_by_the_content_hash(where: str) -> None:
    data = bytearray(_weights())
    (index_len,) = struct.unpack_from("<Q", data)
    if where == "data":
        data[-5] ^= 0x01
    else:  # a shape digit inside the tensor index: still valid JSON, still a valid file for safetensors
        header = data[8 : 8 + index_len].decode()
        at = header.index('"shape":[8,4]')
        data[8 + at : 8 + at + len('"shape":[8,4]')] = b'"shape":[4,8]'
    with pytest.raises(CheckpointError, match="corrupted"):
        load_weights(bytes(data))


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_weights()[:-16])
    with pytest.raises(CheckpointError, match="truncated"):
        load_weights(path)
    path.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="too short"):
        load_weights(path)


def test_a_safetensors_file_from_another_tool_is_refused_naming_why() -> None:
    foreign = save({"w": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="without modelyard's header fields"):
        load_weights(foreign)


def test_a_newer_format_version_asks_for_an_upgrade() -> None:
    data = _weights()
    (index_len,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + index_len])
    header["__metadata__"]["format_version"] = str(FORMAT_VERSION + 1)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with pytest.raises(CheckpointError, match="upgrade modelyard"):
        load_weights(struct.pack("<Q", len(raw)) + raw + data[8 + index_len :])


def test_tied_weights_are_stored_once_per_name() -> None:
    shared = torch.randn(3, 3)
    data = weights_bytes({"a": shared, "b": shared}, model_class="Tied", config={})
    state = load_weights(data).state_dict
    torch.testing.assert_close(state["a"], state["b"])


def test_a_state_dict_entry_that_is_not_a_tensor_is_refused() -> None:
    with pytest.raises(CheckpointError, match="'step' is a int, not a tensor"):
        weights_bytes({"step": 3}, model_class="X", config={})


def test_a_tampered_safetensors_version_is_not_loaded_by_the_store(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path / "models")
    ref = store.save(_artifact(_weights()))
    path = Path(ref.path) / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"model\.safetensors is corrupt"):
        store.load_model("trend", "EURUSD_1h", 1)
