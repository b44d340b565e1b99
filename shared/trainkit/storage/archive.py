"""Streaming a version's files as a zip, chunk by chunk, without holding the archive in memory.

``zipfile`` writes to an unseekable sink using data descriptors, so each chunk can be handed to the
caller (an HTTP response, a file) as soon as it is produced. Weights are stored, not deflated: trained
fp32 weights gain ~10 % from deflate at a large CPU cost; the small JSON files are deflated.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK_SIZE = 1024 * 1024


class _ChunkSink:
    """A write-only, unseekable file object that buffers bytes until :meth:`drain` takes them."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def stream_zip(files: Iterable[tuple[str, Path]]) -> Iterator[bytes]:
    """Yield a zip of ``(arcname, path)`` files in chunks of roughly :data:`CHUNK_SIZE` bytes."""
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as archive:  # type: ignore[call-overload]
        for arcname, path in files:
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_STORED if arcname.endswith(".pt") else zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, mode="w", force_zip64=True) as target:
                while chunk := source.read(CHUNK_SIZE):
                    target.write(chunk)
                    if data := sink.drain():
                        yield data
            if data := sink.drain():
                yield data
    if data := sink.drain():
        yield data
