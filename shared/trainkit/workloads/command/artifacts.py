"""The files of a command's output folder that make its model version: the template's globs, files only."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

#: Names the model store writes itself; an artefact is kept under ``files/`` so it never collides.
ARTIFACTS_PREFIX = "files/"


def collect_artifacts(output_dir: Path, globs: Sequence[str]) -> dict[str, Path]:
    """``{relative posix path: file}`` of every regular file under ``output_dir`` matching a glob.

    A symbolic link is skipped (it could point anywhere on the machine); so is anything whose real path
    leaves ``output_dir``."""
    root = output_dir.resolve()
    found: dict[str, Path] = {}
    for pattern in globs:
        for path in sorted(root.glob(pattern)):
            if path.is_symlink() or not path.is_file():
                if path.is_symlink():
                    logger.warning("artefact %s is a symbolic link; not kept", path.relative_to(root))
                continue
            if not path.resolve().is_relative_to(root):
                continue
            found.setdefault(path.relative_to(root).as_posix(), path)
    return dict(sorted(found.items()))
