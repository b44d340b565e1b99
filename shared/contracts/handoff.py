"""The result hand-off from host to backend: the model file as gzip+base64 in JSON, or by reference.

A result payload is JSON::

    {"operation_id", "session_id",
     "result":   TrainingResult.as_dict(),
     "artifact": {"strategy", "name", "config", "metrics", "features", "metadata"},
     "model":    {"encoding": "gzip+base64", "data", "sha256", "size"}        # small models
              or {"encoding": "external", "url", "sha256", "size"}}          # above the inline limit

``sha256`` and ``size`` describe the *uncompressed* ``model.safetensors`` bytes (an older host sends a ``model.pt``; the backend tells them apart by content). An external ``url`` is
relative to the host's base URL unless absolute; GET it (signed) to stream the raw bytes.

A result of several files (a command's artefacts) travels the same way: the ``model`` slot then holds
an uncompressed tar of them, and the artifact says ``"bundle": "tar"`` and lists each file's sha256 and
size under ``"files"`` (:mod:`shared.contracts.bundle`). A run that kept no model sends ``"artifact":
null, "model": null``.

Pure python (gzip via zlib, base64, hashlib): no torch, so both sides can use it. Encoding reads the
file in chunks; decoding inflates with a bound, so a small body cannot expand past ``max_size``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

INLINE_ENCODING = "gzip+base64"
EXTERNAL_ENCODING = "external"
#: Level 1: trained fp32 weights barely compress (benchmarks/handoff.py: ratio 1.074 at level 1,
#: 1.077 at 6 and 9, which cost 15-18 % more CPU), so the fastest level wins.
DEFAULT_GZIP_LEVEL = 1
_GZIP_WBITS = 31  # zlib's gzip container
_READ_CHUNK = 3 << 18  # 768 KiB: a multiple of 3, so base64 chunks concatenate without padding
_B64_CHUNK = 4 << 18  # 1 MiB of base64 text: a multiple of 4


class HandoffError(ValueError):
    """A result payload's model is malformed, too large or does not match its checksum."""


def sha256_file(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size of the file at ``path``, read in chunks."""
    with Path(path).open("rb") as source:
        return sha256_open_file(source)


def sha256_open_file(source: BinaryIO) -> tuple[str, int]:
    """sha256 hex digest and size of an open file's bytes from where it stands, read in chunks; leaves it
    at its start again (a shipper holds the file open, so a pruned file still reads whole)."""
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: source.read(_READ_CHUNK), b""):
        digest.update(block)
        size += len(block)
    source.seek(0)
    return digest.hexdigest(), size


def file_chunks(source: BinaryIO) -> Iterator[bytes]:
    """An open file's bytes from where it stands, in chunks: the body of a streamed upload."""
    yield from iter(lambda: source.read(_READ_CHUNK), b"")


def encode_model_inline(path: Path, *, level: int = DEFAULT_GZIP_LEVEL) -> dict[str, Any]:
    """``{"encoding": "gzip+base64", "data", "sha256", "size"}`` of the file at ``path``."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    digest = hashlib.sha256()
    size = 0
    pending = b""
    parts: list[str] = []
    with Path(path).open("rb") as source:
        for block in iter(lambda: source.read(_READ_CHUNK), b""):
            digest.update(block)
            size += len(block)
            pending += compressor.compress(block)
            cut = len(pending) - len(pending) % 3
            parts.append(base64.b64encode(pending[:cut]).decode("ascii"))
            pending = pending[cut:]
    parts.append(base64.b64encode(pending + compressor.flush()).decode("ascii"))
    return {"encoding": INLINE_ENCODING, "data": "".join(parts), "sha256": digest.hexdigest(), "size": size}


def describe_model_external(path: Path, url: str) -> dict[str, Any]:
    """:func:`external_model` for the file at ``path``, hashed here."""
    sha256, size = sha256_file(path)
    return external_model(url, sha256, size)


def external_model(url: str, sha256: str, size: int) -> dict[str, Any]:
    """``{"encoding": "external", "url", "sha256", "size"}`` for a model fetched separately."""
    return {"encoding": EXTERNAL_ENCODING, "url": url, "sha256": sha256, "size": size}


def build_payload(
    *,
    operation_id: str,
    session_id: str,
    result: Mapping[str, Any],
    artifact: Mapping[str, Any] | None,
    model: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "operation_id": operation_id,
        "session_id": session_id,
        "result": dict(result),
        "artifact": dict(artifact) if artifact is not None else None,
        "model": dict(model) if model is not None else None,
    }


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes to sign and send (compact JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def decode_inline_model(model: Mapping[str, Any], *, max_size: int) -> bytes:
    """The uncompressed ``model.safetensors`` bytes of an inline model, checked against its size and sha256.

    Raises :class:`HandoffError` for another encoding, a declared or actual size above ``max_size``,
    broken base64 or gzip, or a size/sha256 mismatch.
    """
    if model.get("encoding") != INLINE_ENCODING:
        raise HandoffError(f"model encoding is {model.get('encoding')!r}, expected {INLINE_ENCODING!r}")
    data, sha256, size = model.get("data"), model.get("sha256"), model.get("size")
    if not isinstance(data, str) or not isinstance(sha256, str) or not isinstance(size, int):
        raise HandoffError("inline model needs 'data' (str), 'sha256' (str) and 'size' (int)")
    if size > max_size:
        raise HandoffError(f"model declares {size} bytes, above the limit of {max_size} bytes")
    inflater = zlib.decompressobj(_GZIP_WBITS)
    out = bytearray()
    try:
        for start in range(0, len(data), _B64_CHUNK):
            chunk = base64.b64decode(data[start : start + _B64_CHUNK], validate=True)
            out += inflater.decompress(chunk, max_size + 1 - len(out))
            if len(out) > max_size or inflater.unconsumed_tail:
                raise HandoffError(f"model inflates past the limit of {max_size} bytes")
        out += inflater.flush()
    except (binascii.Error, zlib.error) as exc:
        raise HandoffError(f"model data is not valid gzip+base64: {exc}") from exc
    if not inflater.eof:
        raise HandoffError("model data is truncated (the gzip stream does not end)")
    check_model_bytes(bytes(out), sha256=sha256, size=size)
    return bytes(out)


def check_model_bytes(data: bytes, *, sha256: str, size: int) -> None:
    """Raise :class:`HandoffError` unless ``data`` has exactly ``size`` bytes and digest ``sha256``."""
    digest = ModelDigest(sha256=sha256, size=size)
    digest.update(data)
    digest.verify()


class ModelDigest:
    """Checks a model received in chunks (a streamed download) against its declared sha256 and size."""

    def __init__(self, *, sha256: str, size: int) -> None:
        self.expected_sha256 = sha256
        self.expected_size = size
        self._digest = hashlib.sha256()
        self.received = 0

    def update(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.expected_size:
            raise HandoffError(f"model is longer than its declared {self.expected_size} bytes")
        self._digest.update(chunk)

    def verify(self) -> None:
        if self.received != self.expected_size:
            raise HandoffError(f"model has {self.received} bytes, expected {self.expected_size}")
        actual = self._digest.hexdigest()
        if actual != self.expected_sha256:
            raise HandoffError(f"model sha256 is {actual}, expected {self.expected_sha256}")
