"""Checksums of a version's files: recorded in ``metadata.json`` at save time, checked by ``verify``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from shared.trainkit.errors import StorageError

METADATA_FILE = "metadata.json"
_HASH_CHUNK = 1024 * 1024


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_manifest(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """``{"model.safetensors": {"sha256": ..., "size": ...}, ...}`` for the files about to be written."""
    return {
        name: {"sha256": sha256_of_bytes(data), "size": len(data)} for name, data in sorted(files.items())
    }


def read_manifest(version_dir: Path, label: str) -> dict[str, dict[str, Any]]:
    path = version_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise StorageError(f"{label}: {METADATA_FILE} is missing", file=METADATA_FILE) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise StorageError(f"{label}: {METADATA_FILE} is not valid JSON: {exc}", file=METADATA_FILE) from exc
    files = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(files, dict) or not all(isinstance(entry, dict) for entry in files.values()):
        raise StorageError(f"{label}: {METADATA_FILE} has no 'files' checksum table", file=METADATA_FILE)
    return files


def stored_files(version_dir: Path) -> list[str]:
    """Every regular file of a version folder as a relative posix path, subfolders included, sorted."""
    found = []
    for folder, _dirs, names in os.walk(version_dir):
        for name in names:
            found.append((Path(folder) / name).relative_to(version_dir).as_posix())
    return sorted(found)


def verify_files(version_dir: Path, label: str) -> None:
    """Raise :class:`StorageError` naming the first file that is missing, unexpected or altered."""
    manifest = read_manifest(version_dir, label)
    present = set(stored_files(version_dir)) - {METADATA_FILE}
    unexpected = sorted(present - manifest.keys())
    if unexpected:
        raise StorageError(
            f"{label}: unexpected file {unexpected[0]} not listed in {METADATA_FILE}", file=unexpected[0]
        )
    for filename, expected in sorted(manifest.items()):
        path = version_dir / filename
        if filename not in present:
            raise StorageError(f"{label}: {filename} is missing", file=filename)
        actual_size = path.stat().st_size
        if actual_size != expected.get("size"):
            raise StorageError(
                f"{label}: {filename} is {actual_size} bytes, {METADATA_FILE} records {expected.get('size')}",
                file=filename,
            )
        actual = sha256_of_file(path)
        if actual != expected.get("sha256"):
            raise StorageError(
                f"{label}: {filename} is corrupt (sha256 {actual}, {METADATA_FILE} records "
                f"{expected.get('sha256')}); restore it or delete this version",
                file=filename,
            )
