"""A stored model's weights: ``model.safetensors``, readable by any tool; ``model.pt`` still loads.

The file is plain safetensors (``safetensors.torch.load_file`` reads it), with modelyard's header
fields in the safetensors metadata (all strings, as the format wants)::

    format          "modelyard"
    format_version  "1"
    model_class     package.module.ClassName (the built-in MLP records "MLP")
    config_hash     sha256 of the canonical config.json the weights belong to
    modelyard_version, torch_version, created_at
    content_sha256  sha256 of the canonical tensor index (names, dtypes, shapes, offsets) + the data

Loading checks what loading a ``model.pt`` checks: the container (safetensors' own header checks
stand in for the magic bytes and lengths), the format version, the content hash (a flipped byte in the
index or the data is caught, as the old header and payload hashes caught it), then the model class and
config hash. Safetensors holds tensors only, so there is no pickle to refuse. A file that starts with
``model.pt``'s magic is loaded by :func:`~shared.trainkit.checkpoint.load_checkpoint`, so versions
stored before the switch load (and download) unchanged.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file as load_safetensors_file
from safetensors.torch import save as save_safetensors

from shared.trainkit.checkpoint import (
    MAGIC,
    Checkpoint,
    CheckpointHeader,
    config_hash,
    expect_header,
    load_checkpoint,
)
from shared.trainkit.errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
LEGACY_FILE = "model.pt"
#: The files a version's weights may live in, newest format first.
MODEL_FILES = (WEIGHTS_FILE, LEGACY_FILE)
FORMAT_NAME = "modelyard"
FORMAT_VERSION = 1
_LENGTH = struct.Struct("<Q")
_MAX_INDEX_BYTES = 100 << 20  # safetensors' own limit on the JSON header
_HASH_CHUNK = 1 << 20


def modelyard_version() -> str:
    try:
        return version("modelyard")
    except PackageNotFoundError:
        return "0+unknown"


def weights_bytes(state_dict: Mapping[str, Any], *, model_class: str, config: Mapping[str, Any]) -> bytes:
    """``state_dict`` as a safetensors file carrying modelyard's header fields."""
    tensors = _plain_tensors(state_dict)
    raw = save_safetensors(tensors)
    (index_len,) = _LENGTH.unpack_from(raw)
    index = json.loads(raw[_LENGTH.size : _LENGTH.size + index_len])
    data = memoryview(raw)[_LENGTH.size + index_len :]
    index.pop("__metadata__", None)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_class": model_class,
        "config_hash": config_hash(config),
        "modelyard_version": modelyard_version(),
        "torch_version": str(torch.__version__),
        "created_at": datetime.now(UTC).isoformat(),
        "content_sha256": _content_sha256(index, [data]),
    }
    header = json.dumps({"__metadata__": metadata, **index}, separators=(",", ":")).encode("utf-8")
    header += b" " * (-len(header) % 8)  # safetensors aligns the data on 8 bytes
    return _LENGTH.pack(len(header)) + header + bytes(data)


def is_legacy_checkpoint(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts like a ``model.pt`` checkpoint."""
    return head[: len(MAGIC)] == MAGIC


def model_file_name(data: bytes) -> str:
    """The name a version stores these weights under: ``model.pt`` for the old format."""
    return LEGACY_FILE if is_legacy_checkpoint(data) else WEIGHTS_FILE


def find_model_file(folder: Path) -> Path | None:
    """The weights file of a version folder, ``model.safetensors`` first; None if it has neither."""
    for name in MODEL_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def load_weights(
    source: Path | str | bytes,
    *,
    expected_model_class: str | None = None,
    expected_config_hash: str | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Read and validate weights in either format (file or bytes); raise :class:`CheckpointError`."""
    head = source[: len(MAGIC)] if isinstance(source, bytes) else _read_head(Path(source))
    if is_legacy_checkpoint(head):
        return load_checkpoint(
            source,
            expected_model_class=expected_model_class,
            expected_config_hash=expected_config_hash,
            map_location=map_location,
        )
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    header = _validated_header(source, name)
    expect_header(header, name, expected_model_class, expected_config_hash)
    try:
        if isinstance(source, bytes):
            state = load_safetensors_bytes(source)
            state = {k: v.to(map_location) for k, v in state.items()}
        else:
            state = load_safetensors_file(str(source), device=str(map_location))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{name} cannot be read as safetensors: {exc}", path=name) from exc
    return Checkpoint(header=header, state_dict=dict(state), extra={})


def read_metadata(source: Path | str | bytes) -> dict[str, str]:
    """The safetensors metadata (modelyard's header fields) of a weights file, unvalidated."""
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    metadata, _index, _offset = _read_index(source, name)
    return metadata


def _plain_tensors(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; a tensor sharing storage with another (tied weights) is copied,
    since safetensors stores each tensor's bytes once per name."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"state_dict entry {key!r} is a {type(value).__name__}, not a tensor; safetensors holds "
                "tensors only",
                key=key,
            )
        tensor = value.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else 0
        if pointer and pointer in seen:
            tensor = tensor.clone()
        seen.add(pointer)
        tensors[key] = tensor
    return tensors


def _content_sha256(index: Mapping[str, Any], data_chunks: Any) -> str:
    digest = hashlib.sha256()
    canonical = {k: v for k, v in index.items() if k != "__metadata__"}
    digest.update(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for chunk in data_chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC))
    except OSError as exc:
        raise CheckpointError(f"cannot read model file {path}: {exc}", path=str(path)) from exc


def _read_index(source: Path | str | bytes, name: str) -> tuple[dict[str, str], dict[str, Any], int]:
    """(metadata, tensor index, data offset) of a safetensors file, its container checked."""
    if isinstance(source, bytes):
        prefix = source[: _LENGTH.size]
        size = len(source)
    else:
        try:
            with Path(source).open("rb") as handle:
                prefix = handle.read(_LENGTH.size)
                size = Path(source).stat().st_size
                index_len = _LENGTH.unpack(prefix)[0] if len(prefix) == _LENGTH.size else 0
                raw_index = handle.read(min(index_len, _MAX_INDEX_BYTES))
        except OSError as exc:
            raise CheckpointError(f"cannot read model file {name}: {exc}", path=name) from exc
    if len(prefix) < _LENGTH.size:
        raise CheckpointError(f"{name} is not a model file (too short: {size} bytes)", path=name)
    (index_len,) = _LENGTH.unpack(prefix)
    if index_len > _MAX_INDEX_BYTES or _LENGTH.size + index_len > size:
        raise CheckpointError(
            f"{name} is not a safetensors model file, or is truncated inside its header", path=name
        )
    if isinstance(source, bytes):
        raw_index = source[_LENGTH.size : _LENGTH.size + index_len]
    try:
        index = json.loads(raw_index)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{name} has an unreadable safetensors header: {exc}", path=name) from exc
    if not isinstance(index, dict):
        raise CheckpointError(f"{name} has an unreadable safetensors header (not an object)", path=name)
    metadata = index.pop("__metadata__", None)
    return (metadata if isinstance(metadata, dict) else {}), index, _LENGTH.size + index_len


def _validated_header(source: Path | str | bytes, name: str) -> CheckpointHeader:
    metadata, index, offset = _read_index(source, name)
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{name} is a safetensors file without modelyard's header fields (format "
            f"{metadata.get('format')!r}); it was not written by modelyard",
            path=name,
        )
    raw_version = str(metadata.get("format_version", ""))
    if not raw_version.isdigit() or not 1 <= int(raw_version) <= FORMAT_VERSION:
        raise CheckpointError(
            f"model file {name} has format version {raw_version!r}; this modelyard reads versions 1 to "
            f"{FORMAT_VERSION}; upgrade modelyard to load it",
            path=name,
            format_version=raw_version,
        )
    ends = [entry.get("data_offsets", [0, 0])[1] for entry in index.values() if isinstance(entry, dict)]
    expected_bytes = max(ends, default=0)
    data_bytes = (len(source) if isinstance(source, bytes) else Path(source).stat().st_size) - offset
    if data_bytes != expected_bytes:
        raise CheckpointError(
            f"model file {name} is truncated or padded: its data has {data_bytes} of {expected_bytes} bytes",
            path=name,
        )
    if _content_sha256(index, _data_chunks(source, offset)) != metadata.get("content_sha256"):
        raise CheckpointError(
            f"model file {name} is corrupted: its content sha256 does not match its header", path=name
        )
    return CheckpointHeader(
        format_version=int(raw_version),
        torch_version=metadata.get("torch_version", ""),
        model_class=metadata.get("model_class", ""),
        config_hash=metadata.get("config_hash", ""),
        payload_sha256=metadata.get("content_sha256", ""),
        payload_bytes=data_bytes,
        created_at=metadata.get("created_at", ""),
        modelyard_version=metadata.get("modelyard_version", ""),
    )


def _data_chunks(source: Path | str | bytes, offset: int) -> Any:
    if isinstance(source, bytes):
        yield memoryview(source)[offset:]
        return
    with Path(source).open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(_HASH_CHUNK):
            yield chunk
