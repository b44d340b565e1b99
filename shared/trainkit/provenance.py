"""What a run was made from, for run.json: the sha256 of every input file and of the texts that define
the run (a strategy's YAML, a command line), the modelyard version, and the git commit when the code
runs from a checkout. No torch: hashing and one bounded ``git`` call."""

from __future__ import annotations

import functools
import hashlib
import logging
import subprocess
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

logger = logging.getLogger(__name__)

DISTRIBUTION: Final = "modelyard"
RUN_FILE: Final = "run.json"  # the same name as run_record.RUN_FILE, without importing torch
SOURCE_ROOT: Final = Path(__file__).resolve().parents[2]
GIT_TIMEOUT_S: Final = 5.0


def provenance(files: Sequence[Path], texts: Mapping[str, str], *, root: Path) -> dict[str, Any]:
    """``inputs`` (path relative to ``root`` when inside it, bytes, sha256), ``sources`` (name →
    sha256 of the UTF-8 text), ``modelyard_version`` and, from a checkout, ``git_commit``."""
    record: dict[str, Any] = {
        "inputs": [_describe(path, root) for path in files],
        "sources": {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in texts.items()},
        "modelyard_version": modelyard_version(),
    }
    commit = git_commit()
    if commit is not None:
        record["git_commit"] = commit
    return record


def modelyard_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


@functools.cache
def git_commit() -> str | None:
    """HEAD of the checkout the code runs from (``+dirty`` when files differ from it); None when the
    code is an installed package, or git is absent or slow."""
    if not (SOURCE_ROOT / ".git").exists():
        return None
    try:
        head = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError) as exc:
        logger.info("no git commit for the run record: %s", exc)
        return None
    return f"{head}+dirty" if dirty else head


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(SOURCE_ROOT), *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=True,
    )
    return done.stdout.strip()


def file_sha256(path: Path) -> str:
    """The sha256 of the file at ``path``, read in 1 MiB blocks (any size, little memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: Path, root: Path) -> dict[str, Any]:
    resolved = path.resolve()
    name = str(resolved.relative_to(root.resolve())) if resolved.is_relative_to(root.resolve()) else str(path)
    return {"path": name, "bytes": resolved.stat().st_size, "sha256": file_sha256(path)}
