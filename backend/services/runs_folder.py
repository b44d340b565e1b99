"""Backends on one database must share one runs folder (``MODELYARD_RUNS_DIR``).

It holds what one backend receives for an operation that another may need next: the training checkpoints
hosts and Ray jobs ship (a re-dispatch, an adoption or a manual retry by another backend resumes from
them), the operation logs, the job-token key. Keeping checkpoints there (not under the shared models
folder) keeps them where a local attempt writes and resumes from its own, so every mode resumes from one
folder. Each backend leaves a marker named after its instance in ``<runs dir>/.backends/`` before it
registers its lease; at start it looks for the markers of the other live backends, and a missing one
means that backend writes into another folder: a warning names it and the setting (a misconfigured
deployment, which refusing to start would turn into an outage).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

MARKERS = ".backends"


def mark_runs_folder(runs_dir: Path, instance_id: str) -> None:
    """Say that backend ``instance_id`` writes into ``runs_dir``."""
    folder = runs_dir / MARKERS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / instance_id).write_text(f"{time.time():.0f}\n", encoding="utf-8")


def unmark_runs_folder(runs_dir: Path, instance_id: str) -> None:
    with contextlib.suppress(OSError):
        (runs_dir / MARKERS / instance_id).unlink()


def check_shared_runs_folder(
    runs_dir: Path, instance_id: str, alive: Iterable[str], *, stale_after_s: float
) -> list[str]:
    """The other live backends whose marker is not in ``runs_dir`` (a warning each); markers of
    backends no longer alive go once older than ``stale_after_s`` (a backend marks before it registers)."""
    folder = runs_dir / MARKERS
    alive = set(alive)
    now = time.time()
    for marker in folder.iterdir() if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if marker.name not in alive and now - marker.stat().st_mtime > stale_after_s:
                marker.unlink()
    missing = sorted(other for other in alive - {instance_id} if not (folder / other).is_file())
    for other in missing:
        logger.warning(
            "backend %s shares this database but not this runs folder (%s): the checkpoints and logs it "
            "receives are not seen here, so a training it took checkpoints for restarts from scratch when "
            "this backend retries it. Every backend on one database must share MODELYARD_RUNS_DIR.",
            other,
            runs_dir,
        )
    return missing
