"""A command's own checkpoint files, kept by modelyard so that a retry resumes from them.

The program writes checkpoints in its own format wherever its template's ``checkpoints`` glob says (under
``{output_dir}``). A :class:`CheckpointKeeper` copies them into the run's checkpoint folder as
``step-<step>-<name>`` (to a temporary name, then renamed: a crash never leaves half a copy), the newest
``keep_last`` kept, never more often than the policy's ``min_interval_s``; the copy's name is in the
wire's alphabet (``shared.contracts.host.step_checkpoint_name``: a space becomes ``_``), so it ships. The
step comes from one of two places:

- **The program says it** (preferred): a line ``MODELYARD {"checkpoint": "ckpt/last.pt", "step": 400}``
  once the file is complete (the path relative to ``{output_dir}``, which it must stay inside). The
  output parser hands it to :meth:`CheckpointKeeper.declare`; from the first such line on, the glob is
  only the switch that turns checkpointing on. A declared file that changes before it is copied (the
  program already wrote the next one) is left for that next line, so a copy always holds its label's step.
- **Inferred** (a program that does not say): every ``LOOK_INTERVAL_S`` the keeper looks for the newest
  file matching the glob; once that file has stopped changing (same size and modification time on two
  looks, so a program that writes in place is not caught halfway) it is copied, labelled with the last
  step the program had printed when that version was first seen. A version first seen after the program
  ended is not kept: its step could be anything the program printed since it was written.

A retry hands the newest copy back to the program through the template's ``resume_argv``
(``{checkpoint}``); see :func:`newest_command_checkpoint`.
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

from shared.contracts.host import step_checkpoint_name

logger = logging.getLogger(__name__)

#: A kept copy: ``step-000001200-checkpoint.pt``.
COMMAND_CHECKPOINT = re.compile(r"^step-(\d{9})-(.+)$")
LOOK_INTERVAL_S = 0.5


def command_checkpoint_name(step: int, source: Path) -> str:
    """The kept copy's name, in the wire's form (a host or a Ray job ships it as it is)."""
    return step_checkpoint_name(step, source.name)


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


#: One version of a file: its path, size and modification time (a new version differs in one of them).
_Version = tuple[Path, int, int]


def _version_of(path: Path) -> _Version | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (path, stat.st_size, stat.st_mtime_ns)


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
        self._seen: _Version | None = None  # newest glob match at the last look
        self._seen_step = 0
        self._lock = threading.Lock()
        self._declared: tuple[_Version, int] | None = None  # the program's newest line, not yet kept
        self._told = False  # the program states its checkpoints: the glob's inference is off
        self._refused = False  # a bad line was logged once
        self._kept: _Version | None = None  # what was copied last
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

    def declare(self, relative: str, step: int) -> None:
        """The program says ``relative`` (under ``{output_dir}``) is a complete checkpoint of ``step``
        (called on the output reader's thread; the copy happens on the keeper's)."""
        version = self._inside(relative)
        with self._lock:
            self._told = True
            if version is not None:
                self._declared = (version, step)
                return
            if self._refused:
                return
            self._refused = True
        logger.warning(
            "checkpoint line ignored: %r is not a file inside {output_dir} (a relative path, no symlink); "
            "further bad checkpoint lines are ignored silently",
            relative,
        )

    def _inside(self, relative: str) -> _Version | None:
        path = Path(relative)
        if not relative or path.is_absolute():
            return None
        candidate = self._root / path
        try:
            if candidate.is_symlink() or not candidate.resolve().is_relative_to(self._root):
                return None
        except OSError:
            return None
        version = _version_of(candidate)
        return version if version is not None and candidate.is_file() else None

    def _loop(self) -> None:
        while not self._stop.wait(LOOK_INTERVAL_S):
            self.look()

    def look(self, *, final: bool = False) -> None:
        with self._lock:
            told, declared = self._told, self._declared
        if told:
            self._keep_declared(declared, final)
        else:
            self._keep_globbed(final)

    def _due(self, final: bool) -> bool:
        return final or time.monotonic() - self._last_copy >= self._min_interval_s

    def _keep_declared(self, declared: tuple[_Version, int] | None, final: bool) -> None:
        if declared is None or declared[0] == self._kept or not self._due(final):
            return
        version, step = declared
        self._copy(version, step)
        with self._lock:
            if self._declared == declared:
                self._declared = None

    def _keep_globbed(self, final: bool) -> None:
        candidate = self._newest()
        previous = self._seen
        if candidate != previous and not final:  # a new file or version: the step printed when first seen
            self._seen, self._seen_step = candidate, self._step() or 0
        if candidate is None or candidate == self._kept:
            return
        if candidate != self._seen:
            logger.info(
                "[modelyard] checkpoint %s not kept: it appeared after the program's last output was read, so "
                'its step is unknown (a program can say it: MODELYARD {"checkpoint": ..., "step": N})',
                candidate[0].name,
            )
            return
        settled = final or candidate == previous
        if settled and self._due(final):
            self._copy(candidate, self._seen_step)

    def _newest(self) -> _Version | None:
        newest: _Version | None = None
        for path in self._root.glob(self._glob):
            try:
                if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(self._root):
                    continue
            except OSError:  # removed or replaced between the listing and the look
                continue
            version = _version_of(path)
            if version is not None and (newest is None or version[2] > newest[2]):
                newest = version
        return newest

    def _copy(self, version: _Version, step: int) -> None:
        source = version[0]
        target = self._dest / command_checkpoint_name(step, source)
        partial = self._dest / f".{target.name}.partial"
        started = time.perf_counter()
        try:
            self._dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, partial)
            if _version_of(source) != version:  # rewritten meanwhile: the copy may mix two versions
                partial.unlink()
                logger.info("[modelyard] checkpoint %s changed while it was copied; not kept", source.name)
                return
            os.replace(partial, target)
        except OSError as exc:  # disk full, file gone: the training goes on, the older copies stay
            with contextlib.suppress(OSError):
                partial.unlink()
            logger.warning("checkpoint %s not kept: %s", source.name, exc)
            return
        took = time.perf_counter() - started
        self._kept, self._last_copy = version, time.monotonic()
        self.kept += 1
        for older, _ in command_checkpoints(self._dest)[self._keep_last :]:
            with contextlib.suppress(OSError):
                older.unlink()
        logger.info("[modelyard] checkpoint kept at step %d (%s, %d bytes)", step, source.name, version[1])
        if self._on_kept is not None:
            self._on_kept(target, step, took)
