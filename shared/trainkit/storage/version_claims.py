"""Claiming version numbers: atomic across threads and processes, never reused after a delete.

Each model has a lock file ``.{name}.lock`` (``fcntl.flock``; POSIX only) and a counter file
``.{name}.counter`` holding the highest number ever claimed. A claim takes the lock, reads
``max(counter, highest folder present)``, adds one and writes the counter back (atomic replace) before
releasing the lock. Because the counter never goes below a number that became visible, a deleted
version's number is never handed out again; the folder scan covers a counter lost or predating the
folders. ``flock`` locks belong to an open file description, so two threads of one process exclude each
other as two processes do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.trainkit.errors import StorageError
from shared.trainkit.storage.durable_files import replace_durably
from shared.trainkit.storage.names import counter_file_name, lock_file_name, parse_version_dir


@contextmanager
def model_lock(strategy_dir: Path, name: str) -> Iterator[None]:
    """Hold the exclusive per-model lock for the duration of the ``with`` block."""
    fd = os.open(strategy_dir / lock_file_name(name), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def existing_versions(strategy_dir: Path, name: str) -> list[int]:
    """Complete versions of ``name`` present in ``strategy_dir``, ascending."""
    try:
        entries = list(os.scandir(strategy_dir))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        parsed = parse_version_dir(entry.name)
        if parsed is not None and parsed[0] == name and entry.is_dir(follow_symlinks=False):
            found.append(parsed[1])
    return sorted(found)


def read_counter(strategy_dir: Path, name: str) -> int:
    path = strategy_dir / counter_file_name(name)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0
    try:
        return int(text)
    except ValueError as exc:
        raise StorageError(
            f"version counter {path} is corrupt ({text!r}); delete it and the store will rebuild it "
            "from the version folders",
            file=str(path),
        ) from exc


def claim_next_version(strategy_dir: Path, name: str) -> int:
    """Reserve and return the next version number of ``name``. Call while holding :func:`model_lock`."""
    present = existing_versions(strategy_dir, name)
    version = max(read_counter(strategy_dir, name), present[-1] if present else 0) + 1
    replace_durably(strategy_dir / counter_file_name(name), f"{version}\n".encode("ascii"))
    return version


def release_claim(strategy_dir: Path, name: str, version: int) -> None:
    """Give back ``version`` after a failed save, if no later claim was made; best effort.

    The number never became visible, so handing it out again breaks no promise; a later claim by
    someone else keeps it burned instead (the counter only moves back from its own top).
    """
    with contextlib.suppress(OSError, StorageError), model_lock(strategy_dir, name):
        if read_counter(strategy_dir, name) == version:
            replace_durably(strategy_dir / counter_file_name(name), f"{version - 1}\n".encode("ascii"))
