"""The versioned checkpoint format, validated on load.

Layout of a file (all integers big-endian)::

    magic        8 bytes   b"MYCKPT\\r\\n"  (the CR LF catches text-mode mangling)
    version      u16       FORMAT_VERSION
    header_len   u32       length of the JSON header
    header_hash  32 bytes  sha256 of the JSON header (a flipped header byte is caught too)
    header       JSON      format_version, torch_version, model_class, config_hash,
                           payload_sha256, payload_bytes, created_at
    payload      torch.save({"state_dict": ..., "extra": ...})

Loading checks magic, version, header hash, payload length and hash, model class and config hash,
each with its own :class:`CheckpointError` message, and only then unpickles the payload, always with
``torch.load(weights_only=True)`` so a crafted file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import mmap
import os
import pickle
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import torch

from shared.trainkit.errors import CheckpointError

MAGIC = b"MYCKPT\r\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct(">8sHI32s")
_MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class CheckpointHeader:
    format_version: int
    torch_version: str
    model_class: str
    config_hash: str
    payload_sha256: str
    payload_bytes: int
    created_at: str
    #: Recorded by ``model.safetensors`` files; empty for a checkpoint written before it existed.
    modelyard_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkpoint:
    header: CheckpointHeader
    state_dict: dict[str, torch.Tensor]
    extra: dict[str, Any]


def model_class_name(module: torch.nn.Module) -> str:
    """The name a checkpoint records for ``module``'s class: ``package.module.ClassName``."""
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``config`` (sorted keys, no whitespace)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def checkpoint_bytes(
    state_dict: Mapping[str, Any],
    *,
    model_class: str,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Serialize ``state_dict`` (+ ``extra``: plain containers, numbers, strings, tensors) to the format."""
    buffer = io.BytesIO()
    torch.save({"state_dict": dict(state_dict), "extra": dict(extra or {})}, buffer)
    payload = buffer.getvalue()
    header = CheckpointHeader(
        format_version=FORMAT_VERSION,
        torch_version=str(torch.__version__),
        model_class=model_class,
        config_hash=config_hash(config),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload_bytes=len(payload),
        created_at=datetime.now(UTC).isoformat(),
    )
    header_json = json.dumps(header.as_dict(), sort_keys=True).encode("utf-8")
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_json), hashlib.sha256(header_json).digest())
    return prefix + header_json + payload


def save_checkpoint(
    path: Path | str,
    state_dict: Mapping[str, Any],
    *,
    model_class: str,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically: a temp file in the same folder, fsync, then ``os.replace``."""
    write_checkpoint_bytes(
        path, checkpoint_bytes(state_dict, model_class=model_class, config=config, extra=extra)
    )


def write_checkpoint_bytes(path: Path | str, data: bytes) -> None:
    """Write the bytes of :func:`checkpoint_bytes` to ``path`` atomically (temp file, fsync, replace)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {target}: {exc}", path=str(target)) from exc


def load_checkpoint(
    source: Path | str | bytes,
    *,
    expected_model_class: str | None = None,
    expected_config_hash: str | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Read and validate a checkpoint from a file path or from bytes; raise :class:`CheckpointError`.

    A file is memory-mapped for the checks and unpickled straight from disk, so loading a large file
    holds no copy of it in Python memory (only the tensors themselves).
    """
    if isinstance(source, bytes):
        header, offset = _split(source, "<bytes>")
        expect_header(header, "<bytes>", expected_model_class, expected_config_hash)
        content = _unpickle(io.BytesIO(source[offset:]), "<bytes>", map_location)
    else:
        header, content = _load_file(Path(source), expected_model_class, expected_config_hash, map_location)
    return Checkpoint(header=header, state_dict=content["state_dict"], extra=content.get("extra", {}))


def _load_file(
    path: Path,
    expected_model_class: str | None,
    expected_config_hash: str | None,
    map_location: str | torch.device,
) -> tuple[CheckpointHeader, dict[str, Any]]:
    name = str(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}", path=name) from exc
    with handle:
        if os.fstat(handle.fileno()).st_size < _PREFIX.size:
            header, offset = _split(handle.read(), name)  # raises: too short to be a checkpoint
        else:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                header, offset = _split(mapped, name)
        expect_header(header, name, expected_model_class, expected_config_hash)
        # torch reads a zip archive relative to the stream's position when it is handed the stream.
        handle.seek(offset)
        return header, _unpickle(handle, name, map_location)


def expect_header(
    header: CheckpointHeader, name: str, expected_model_class: str | None, expected_config_hash: str | None
) -> None:
    """Raise :class:`CheckpointError` when the header names another model class or configuration."""
    if expected_model_class is not None and header.model_class != expected_model_class:
        raise CheckpointError(
            f"checkpoint {name} holds a {header.model_class!r}, not the expected {expected_model_class!r}; "
            "load it with the model class that wrote it",
            path=name,
            model_class=header.model_class,
        )
    if expected_config_hash is not None and header.config_hash != expected_config_hash:
        raise CheckpointError(
            f"checkpoint {name} was trained with another configuration (config hash "
            f"{header.config_hash[:12]}…, expected {expected_config_hash[:12]}…); "
            "use the config it was saved with",
            path=name,
        )


def _split(data: bytes | mmap.mmap, name: str) -> tuple[CheckpointHeader, int]:
    """The validated header and the offset where the payload starts (checked without copying it)."""
    if len(data) < _PREFIX.size:
        if not MAGIC.startswith(bytes(data[: len(MAGIC)])):
            raise CheckpointError(f"{name} is not a modelyard checkpoint (wrong magic bytes)", path=name)
        raise CheckpointError(
            f"checkpoint {name} is truncated ({len(data)} bytes); write it again", path=name
        )
    magic, version, header_len, header_digest = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CheckpointError(f"{name} is not a modelyard checkpoint (wrong magic bytes)", path=name)
    if version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"checkpoint {name} has format version {version}; this modelyard reads versions 1 to "
            f"{FORMAT_VERSION}; upgrade modelyard to load it",
            path=name,
            format_version=version,
        )
    header_end = _PREFIX.size + header_len
    if header_len > _MAX_HEADER_BYTES or header_end > len(data):
        raise CheckpointError(f"checkpoint {name} is truncated inside its header; write it again", path=name)
    header_json = bytes(data[_PREFIX.size : header_end])
    if hashlib.sha256(header_json).digest() != header_digest:
        raise CheckpointError(f"checkpoint {name} has a corrupted header (hash mismatch)", path=name)
    header = _parse_header(header_json, name)
    with memoryview(data) as view, view[header_end:] as payload:
        if len(payload) != header.payload_bytes:
            raise CheckpointError(
                f"checkpoint {name} is truncated: payload has {len(payload)} of {header.payload_bytes} bytes",
                path=name,
            )
        if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
            raise CheckpointError(
                f"checkpoint {name} is corrupted: payload sha256 does not match its header", path=name
            )
    return header, header_end


def _parse_header(header_json: bytes, name: str) -> CheckpointHeader:
    try:
        fields = json.loads(header_json)
        return CheckpointHeader(**fields)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {name} has an unreadable header: {exc}", path=name) from exc


def _unpickle(payload: BinaryIO, name: str, map_location: str | torch.device) -> dict[str, Any]:
    try:
        content = torch.load(payload, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {name} payload holds objects other than tensors and plain data; refusing to load "
            f"it ({type(exc).__name__})",
            path=name,
        ) from exc
    if not isinstance(content, dict) or "state_dict" not in content:
        raise CheckpointError(f"checkpoint {name} payload has no 'state_dict' entry", path=name)
    return content
