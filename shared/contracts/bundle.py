"""A result of several files (a command's artefacts) as one uncompressed tar: packed on the host,
unpacked safely on the backend.

The tar travels in the hand-off's ``model`` slot exactly like a ``model.safetensors`` (inline gzip+base64 or
streamed); the artifact lists every file's sha256 and size, so the receiver checks each file, not just
the tar. Packing is deterministic (sorted names, zero mtime and owner): the same files give the same tar.

Unpacking trusts nothing in the tar: only regular files that the list names, each once, with a relative
path of plain parts (no absolute path, no ``..``, no links or devices), within a size cap, and each with
the listed size and sha256; anything else raises :class:`BundleError` and leaves nothing usable behind.

Pure python (tarfile, hashlib): no torch, so both sides can use it.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from shared.contracts.handoff import HandoffError

BUNDLE_TAR = "tar"
BUNDLE_FILE = "artifacts.tar"
MAX_BUNDLE_FILES = 10_000
_CHUNK = 1 << 20
_PART = re.compile(r"^[^/\\\x00]+$")


class BundleError(HandoffError):
    """A bundle is malformed, unsafe, too large or does not match its file list."""


def check_bundle_name(name: str) -> str:
    """``name`` if it is a relative posix path of plain parts (what a bundle may hold), else BundleError."""
    path = PurePosixPath(name)
    if (
        not name
        or len(name) > 1024
        or name.startswith("/")
        or "\\" in name
        or any(part in ("", ".", "..") or not _PART.match(part) for part in name.split("/"))
        or path.is_absolute()
    ):
        raise BundleError(f"bundle member {name[:200]!r} is not a plain relative path")
    return name


def pack_files(files: Mapping[str, Path], target: Path) -> dict[str, dict[str, Any]]:
    """Write ``files`` (``{relative name: file}``) into the tar ``target``; ``{name: {sha256, size}}``."""
    listed: dict[str, dict[str, Any]] = {}
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, source in sorted(files.items()):
            check_bundle_name(name)
            with Path(source).open("rb") as stream:
                info = tarfile.TarInfo(name)
                info.size = Path(source).stat().st_size
                info.mode = 0o644
                info.mtime = 0
                hashing = _HashingReader(stream)
                tar.addfile(info, hashing)
                listed[name] = {"sha256": hashing.digest.hexdigest(), "size": info.size}
    return listed


def unpack_files(
    bundle: Path,
    listed: Mapping[str, Mapping[str, Any]],
    destination: Path,
    *,
    max_bytes: int,
    max_files: int = MAX_BUNDLE_FILES,
) -> dict[str, Path]:
    """Extract the files ``listed`` (``{name: {sha256, size}}``) from the tar ``bundle`` into the empty
    folder ``destination``; ``{name: extracted file}``. Raises :class:`BundleError` (see the module doc)."""
    if len(listed) > max_files:
        raise BundleError(f"bundle lists {len(listed)} files, above the limit of {max_files}")
    declared = sum(int(entry["size"]) for entry in listed.values())
    if declared > max_bytes:
        raise BundleError(f"bundle lists {declared} bytes of files, above the limit of {max_bytes} bytes")
    root = destination.resolve()
    extracted: dict[str, Path] = {}
    try:
        with tarfile.open(bundle, "r:") as tar:
            for member in tar:
                name = _checked_member(member, listed, extracted)
                target = root.joinpath(*name.split("/"))
                if not target.resolve().is_relative_to(root):
                    raise BundleError(f"bundle member {name!r} leads outside the destination")
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has one
                _copy_checked(source, target, name, listed[name])
                extracted[name] = target
    except tarfile.TarError as exc:
        raise BundleError(f"bundle is not a valid tar: {exc}") from exc
    missing = sorted(set(listed) - set(extracted))
    if missing:
        raise BundleError(f"bundle lacks {len(missing)} listed file(s), first {missing[0]!r}")
    return extracted


def _checked_member(
    member: tarfile.TarInfo, listed: Mapping[str, Mapping[str, Any]], seen: Mapping[str, Path]
) -> str:
    name = check_bundle_name(member.name)
    if not member.isreg():
        raise BundleError(f"bundle member {name!r} is not a regular file (links and folders are refused)")
    if name not in listed:
        raise BundleError(f"bundle member {name!r} is not in the artifact's file list")
    if name in seen:
        raise BundleError(f"bundle member {name!r} appears twice")
    if member.size != int(listed[name]["size"]):
        raise BundleError(f"bundle member {name!r} has {member.size} bytes, listed {listed[name]['size']}")
    return name


def _copy_checked(source: IO[bytes], target: Path, name: str, entry: Mapping[str, Any]) -> None:
    digest = hashlib.sha256()
    size = 0
    with target.open("xb") as sink:
        for block in iter(lambda: source.read(_CHUNK), b""):
            size += len(block)
            if size > int(entry["size"]):
                raise BundleError(f"bundle member {name!r} is longer than its listed {entry['size']} bytes")
            digest.update(block)
            sink.write(block)
    if size != int(entry["size"]) or digest.hexdigest() != entry["sha256"]:
        raise BundleError(
            f"bundle member {name!r} has sha256 {digest.hexdigest()} ({size} bytes), "
            f"listed {entry['sha256']} ({entry['size']} bytes)"
        )


class _HashingReader:
    """A read-only stream that hashes what tarfile reads from it (one pass over each file)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        block = self._stream.read(size)
        self.digest.update(block)
        return block
