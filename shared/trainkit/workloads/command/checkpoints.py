"""A command's own checkpoint files, kept by modelyard so that a retry resumes from them.

The program writes checkpoints in its own format wherever its template's ``checkpoints`` glob says (under
``{output_dir}``). While it runs, a :class:`CheckpointKeeper` looks for the newest matching file every
``LOOK_INTERVAL_S``; once that file has stopped changing (same size and modification time on two looks,
so a program that writes in place is not caught halfway) it is copied into the run's checkpoint folder
as ``step-<step>-<name>`` (to a temporary name, then renamed: a crash never leaves half a copy), the step
being the last one the program had printed when that version of the file was first seen (so it can be
a few steps past the checkpoint's own: the resumed program's first step says exactly). The newest ``keep_last`` copies stay, never more often than the
policy's ``min_interval_s``. A retry hands the newest copy back to the program through the template's
``resume_argv`` (``{checkpoint}``); see :func:`newest_command_checkpoint`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

#: A kept copy: ``step-000001200-checkpoint.pt``.
COMMAND_CHECKPOINT = re.compile(r"^step-(\d{9})-(.+)$")
LOOK_INTERVAL_S = 0.5


def command_checkpoint_name(step: int, source: Path) -> str:
    return f"step-{step:09d}-{source.name}"


def command_checkpoints(folder: Path) -> list[tuple[Path, int]]:
    """The kept copies in ``folder`` with their steps, newest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = COMMAND_CHECKPOINT.match(path.name)
        if match and path.is_file():
            found.append((path, int(match.group(1))))
    return sorted(found, key=lambda item: (item[1], item[0].stat().st_mtime_ns), reverse=True)


def newest_command_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The copy a retry resumes from, and its step; None when nothing was kept."""
    kept = command_checkpoints(folder)
    return kept[0] if kept else None


class CheckpointKeeper:
    """Copies the program's newest checkpoint file into ``dest`` while it runs (on a thread of its own,
    in the caller's logging context so its lines reach the operation's log)."""

    def __init__(
        self,
        output_dir: Path,
        glob: str,
        dest: Path,
        *,
        step: Callable[[], int | None],
        keep_last: int = 2,
        min_interval_s: float = 30.0,
        on_kept: Callable[[Path, int, float], None] | None = None,
    ) -> None:
        self._root = output_dir.resolve()
        self._glob = glob
        self._dest = dest
        self._step = step
        self._keep_last = max(1, keep_last)
        self._min_interval_s = min_interval_s
        self._on_kept = on_kept
        self._seen: tuple[Path, int, int] | None = None  # newest candidate at the last look
        self._seen_step = 0
        self._kept: tuple[Path, int, int] | None = None  # what was copied last
        self._last_copy = float("-inf")
        self._stop = threading.Event()
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._loop,), name="command-checkpoints", daemon=True
        )
        self.kept = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, final_look: bool) -> None:
        """Stop looking; with ``final_look`` (the program has ended, so its files are complete) the
        newest file is kept if it is newer than the last copy, whatever the interval."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10.0)
        if final_look:
            self.look(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(LOOK_INTERVAL_S):
            self.look()

    def look(self, *, final: bool = False) -> None:
        candidate = self._newest()
        previous = self._seen
        if candidate != previous:  # a new file or a new version: the step printed when first seen
            self._seen, self._seen_step = candidate, self._step() or 0
        if candidate is None or candidate == self._kept:
            return
        settled = final or candidate == previous
        due = final or time.monotonic() - self._last_copy >= self._min_interval_s
        if settled and due:
            self._copy(candidate, self._seen_step)

    def _newest(self) -> tuple[Path, int, int] | None:
        newest: tuple[Path, int, int] | None = None
        for path in self._root.glob(self._glob):
            try:
                if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(self._root):
                    continue
                stat = path.stat()
            except OSError:  # removed or replaced between the listing and the look
                continue
            if newest is None or stat.st_mtime_ns > newest[2]:
                newest = (path, stat.st_size, stat.st_mtime_ns)
        return newest

    def _copy(self, candidate: tuple[Path, int, int], step: int) -> None:
        source = candidate[0]
        target = self._dest / command_checkpoint_name(step, source)
        partial = self._dest / f".{target.name}.partial"
        started = time.perf_counter()
        try:
            self._dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        except OSError as exc:  # disk full, file gone: the training goes on, the older copies stay
            with contextlib.suppress(OSError):
                partial.unlink()
            logger.warning("checkpoint %s not kept: %s", source.name, exc)
            return
        took = time.perf_counter() - started
        self._kept, self._last_copy = candidate, time.monotonic()
        self.kept += 1
        for older, _ in command_checkpoints(self._dest)[self._keep_last :]:
            with contextlib.suppress(OSError):
                older.unlink()
        logger.info("[modelyard] checkpoint kept at step %d (%s, %d bytes)", step, source.name, candidate[1])
        if self._on_kept is not None:
            self._on_kept(target, step, took)
