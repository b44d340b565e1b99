"""Append JSON lines to one file from a background thread, fed through a bounded queue (no torch).

The caller's thread only enqueues the row: serialization and file I/O happen on the writer thread,
which keeps the file open for its whole life and flushes whenever the queue runs empty.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

logger = logging.getLogger(__name__)

_STOP: Final = object()

#: Told about every row that was queued but never reached the file (the writer failed, or the row
#: raced in behind the stop marker).
LostRow = Callable[[Mapping[str, Any]], None]


class JsonLinesWriter:
    """Writes the rows given to :meth:`put` as JSON lines to ``path`` (its folder is created)."""

    def __init__(
        self,
        path: Path,
        *,
        max_pending: int = 256,
        on_lost: LostRow | None = None,
        thread_name: str | None = None,
    ) -> None:
        self.path = path
        self.failed: str | None = None
        self._on_lost = on_lost
        self._closed = False
        self._stop_queued = False
        self._state_lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(
            target=self._run, name=thread_name or f"jsonl-writer:{path.name}", daemon=True
        )
        self._thread.start()

    def put(self, row: Mapping[str, Any], timeout_s: float = 0.0) -> bool:
        """Queue one row, waiting up to ``timeout_s`` for room; False when the queue stayed full or the
        writer is closed (the row will not be written)."""
        # under the lock so no row slips into the queue after close has drained it for the last time
        with self._state_lock:
            if self._closed:
                return False
            try:
                if timeout_s > 0:
                    self._queue.put(row, timeout=timeout_s)
                else:
                    self._queue.put_nowait(row)
            except queue.Full:
                return False
            return True

    def close(self, timeout_s: float = 5.0) -> bool:
        """Flush and stop the thread; False when it did not finish within ``timeout_s``. Idempotent."""
        with self._state_lock:
            self._closed = True
        if not self._stop_queued:
            try:
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                return False
            self._stop_queued = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            return False
        self._drain(until_stop=False)  # rows put concurrently with close, behind the stop marker
        return True

    def _run(self) -> None:
        item: object = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                while (item := self._queue.get()) is not _STOP:
                    handle.write(json.dumps(item, default=str) + "\n")
                    if self._queue.empty():
                        handle.flush()
        except (OSError, ValueError) as exc:
            self.failed = str(exc)
            logger.exception("JSON-lines writer for %s failed", self.path)
            if item is not _STOP:
                self._lose(item)
                self._drain(until_stop=True)  # keep draining so putters never block on a dead thread

    def _drain(self, *, until_stop: bool) -> None:
        while True:
            try:
                item = self._queue.get() if until_stop else self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                return
            self._lose(item)

    def _lose(self, item: object) -> None:
        if self._on_lost is not None and isinstance(item, Mapping):
            self._on_lost(item)
