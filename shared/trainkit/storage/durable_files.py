"""File-system moves that survive a crash: fsynced writes, atomic symlink switches, two-step removal.

POSIX only: directory fsync and atomic ``rename``/``replace`` semantics are what make a version appear
all at once or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

from shared.trainkit.errors import StorageError


def fsync_dir(path: Path) -> None:
    """Persist a folder's entries (a created, renamed or removed child) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write a new file and fsync it; refuses to overwrite (the folder is private to one writer)."""
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_files_durably(folder: Path, files: dict[str, bytes]) -> None:
    """Write new files into ``folder`` (refusing to overwrite), then fsync each and the folder. Every
    write is issued before the first fsync, so the disk is waited for while all of them are in flight
    rather than once per file in turn."""
    handles = []
    try:
        for name, data in files.items():
            handle = (folder / name).open("xb")
            handles.append(handle)
            handle.write(data)
            handle.flush()
        for handle in handles:
            os.fsync(handle.fileno())
    finally:
        for handle in handles:
            handle.close()
    fsync_dir(folder)


def copy_durably(source: Path, target: Path) -> None:
    """Copy ``source`` to a new file ``target`` (parent folders made and fsynced) and fsync it."""
    created = []
    parent = target.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, target.open("xb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    for folder in created:
        fsync_dir(folder)


def move_durably(source: Path, target: Path) -> None:
    """Move ``source`` to the new file ``target`` and fsync it: a rename on the same file system (no
    byte copied), else a durable copy and the source removed."""
    try:
        os.link(source, target)  # like rename, but refuses to clobber an existing ``target``
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        copy_durably(source, target)
    source.unlink()
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def replace_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old or the new content, never half."""
    temp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
    try:
        write_durably(temp, data)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_dir(path.parent)


def switch_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` (relative) atomically: a temp symlink then ``os.replace``."""
    temp = link.with_name(f".{link.name}.{uuid.uuid4().hex}.part")
    os.symlink(target, temp)
    try:
        os.replace(temp, link)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise StorageError(f"could not switch {link} to {target}: {exc}", file=str(link)) from exc
    fsync_dir(link.parent)


def remove_symlink(link: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
        fsync_dir(link.parent)


def move_aside(path: Path, new_name: str) -> Path:
    """Rename ``path`` to a sibling ``new_name`` (e.g. a trash name) durably and return the new path.

    Removing a folder in place can be interrupted half-way; renaming it first makes it vanish at once,
    and whatever the later ``rmtree`` leaves behind is hidden and swept by ``cleanup_stale``.
    """
    moved = path.with_name(new_name)
    os.rename(path, moved)
    fsync_dir(path.parent)
    return moved
