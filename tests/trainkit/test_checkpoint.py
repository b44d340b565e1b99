"""The checkpoint format: round trip and every rejection, including a malicious pickle."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from pathlib import Path

import pytest
import torch

from shared.trainkit.checkpoint import (
    FORMAT_VERSION,
    MAGIC,
    checkpoint_bytes,
    config_hash,
    load_checkpoint,
    save_checkpoint,
)
from shared.trainkit.errors import CheckpointError

CONFIG = {"max_epochs": 3, "learning_rate": 0.01}
MODEL = "tests.Tiny"


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2).state_dict()


def _assemble(header: dict[str, object], payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    header_json = json.dumps(header, sort_keys=True).encode()
    prefix = struct.pack(">8sHI32s", MAGIC, version, len(header_json), hashlib.sha256(header_json).digest())
    return prefix + header_json + payload


def _header_and_payload(data: bytes) -> tuple[dict[str, object], bytes]:
    (length,) = struct.unpack_from(">I", data, 10)
    start = 10 + 4 + 32
    return json.loads(data[start : start + length]), data[start + length :]


def test_round_trip_through_a_file_keeps_weights_extra_and_header(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(
        path, _state(), model_class=MODEL, config=CONFIG, extra={"epoch": 2, "classes": ["a", "b"]}
    )
    loaded = load_checkpoint(path, expected_model_class=MODEL, expected_config_hash=config_hash(CONFIG))
    for key, tensor in _state().items():
        torch.testing.assert_close(loaded.state_dict[key], tensor)
    assert loaded.extra == {"epoch": 2, "classes": ["a", "b"]}
    assert loaded.header.model_class == MODEL
    assert loaded.header.format_version == FORMAT_VERSION
    assert loaded.header.torch_version == str(torch.__version__)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_round_trip_from_bytes() -> None:
    loaded = load_checkpoint(checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG))
    assert set(loaded.state_dict) == {"weight", "bias"}
    assert loaded.extra == {}


def test_config_hash_is_canonical() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_truncated_file_is_rejected() -> None:
    data = checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG)
    for cut in (10, 60, len(data) - 5):
        with pytest.raises(CheckpointError, match="truncated"):
            load_checkpoint(data[:cut])


def test_flipped_payload_byte_is_rejected() -> None:
    data = bytearray(checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG))
    data[-20] ^= 0xFF
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(bytes(data))


def test_flipped_header_byte_is_rejected() -> None:
    data = bytearray(checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG))
    data[60] ^= 0x01
    with pytest.raises(CheckpointError, match="corrupted header"):
        load_checkpoint(bytes(data))


def test_wrong_magic_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save(_state(), path)  # a plain torch file, not our format
    with pytest.raises(CheckpointError, match="not a modelyard checkpoint"):
        load_checkpoint(path)


def test_future_format_version_is_rejected_with_upgrade_hint() -> None:
    data = checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG)
    header, payload = _header_and_payload(data)
    with pytest.raises(CheckpointError, match="upgrade modelyard") as caught:
        load_checkpoint(_assemble({**header, "format_version": 99}, payload, version=99))
    assert caught.value.details["format_version"] == 99


def test_foreign_model_class_is_rejected() -> None:
    data = checkpoint_bytes(_state(), model_class="other.Model", config=CONFIG)
    with pytest.raises(CheckpointError, match=r"holds a 'other.Model'"):
        load_checkpoint(data, expected_model_class=MODEL)


def test_other_config_is_rejected() -> None:
    data = checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG)
    with pytest.raises(CheckpointError, match="another configuration"):
        load_checkpoint(data, expected_config_hash=config_hash({**CONFIG, "learning_rate": 0.1}))


def test_missing_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "absent.pt")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_payload_is_rejected_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "extra": {"x": _Exploit(marker)}}, buffer)
    payload = buffer.getvalue()
    # a well-formed header with the right hashes: only the unpickling can catch it
    honest, _ = _header_and_payload(checkpoint_bytes(_state(), model_class=MODEL, config=CONFIG))
    header = {**honest, "payload_sha256": hashlib.sha256(payload).hexdigest(), "payload_bytes": len(payload)}
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(_assemble(header, payload))
    assert not marker.exists()


def test_unwritable_target_raises_checkpoint_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write"):
        save_checkpoint(blocker / "model.pt", _state(), model_class=MODEL, config=CONFIG)
