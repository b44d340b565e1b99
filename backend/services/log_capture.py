"""Capture what a training logs, prints and warns, per operation, while it runs on a worker thread.

The runner sets the operation id in a context variable for the duration of the run. One handler on
the root logger routes every record emitted in that context — from any logger: trainkit, the backend,
a plugin's own — to the operation's log store. ``print()`` and ``warnings.warn`` in that context land
there too (a context-aware ``sys.stdout`` / ``sys.stderr`` and ``warnings.showwarning``); outside an
operation they behave exactly as before. Records from other threads (or other operations) never leak
into an operation's log; lines are bounded in length, and the store bounds their number.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from backend.domain.ports import LogRecordLine, OperationLogStore

# Loggers whose INFO records must reach the handler even when the root logger is at WARNING.
INFO_LOGGERS = (
    "shared.trainkit",
    "backend.services.local_runner",
    "backend.services.training",
    "backend.services.remote_runner",
    "backend.services.remote_follower",
    "backend.services.progress",  # "retrying from epoch k on X"
    "backend.services.host_placement",
    "backend.services.ray_placement",
    "backend.adapters.ray_runs",
    "backend.services.result_ingest",
)
MAX_LINE_CHARS = 8192

_current_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modelyard_operation", default=None
)


def current_operation() -> str | None:
    return _current_operation.get()


class OperationLogHandler(logging.Handler):
    def __init__(self, store: OperationLogStore) -> None:
        super().__init__(level=logging.INFO)
        self._store = store
        self._seq = itertools.count()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.addFilter(lambda _record: _current_operation.get() is not None)

    def emit(self, record: logging.LogRecord) -> None:
        op_id = _current_operation.get()
        if op_id is None:
            return
        try:
            self.write(op_id, record.levelname, record.name, self.format(record), record.created)
        except Exception:
            self.handleError(record)

    def write(self, op_id: str, level: str, logger: str, message: str, created: float) -> None:
        line = LogRecordLine(
            seq=next(self._seq),
            at=datetime.fromtimestamp(created, tz=UTC),
            level=level,
            logger=logger,
            message=message[:MAX_LINE_CHARS],
        )
        self._store.append(op_id, line)


class OperationStream:
    """Stands in for ``sys.stdout``/``sys.stderr``: text written inside an operation becomes log lines
    of it (one per line; a line longer than MAX_LINE_CHARS is split), anything else goes through."""

    def __init__(self, original: TextIO, handler: OperationLogHandler, name: str, level: str) -> None:
        self.original = original
        self._handler = handler
        self._name = name
        self._level = level
        self._partial: dict[str, str] = {}

    def write(self, text: str) -> int:
        op_id = _current_operation.get()
        if op_id is None:
            return self.original.write(text)
        pending = self._partial.pop(op_id, "") + text
        *lines, rest = pending.split("\n")
        while len(rest) > MAX_LINE_CHARS:
            lines.append(rest[:MAX_LINE_CHARS])
            rest = rest[MAX_LINE_CHARS:]
        for line in lines:
            self._emit(op_id, line)
        if rest:
            self._partial[op_id] = rest
        return len(text)

    def flush(self) -> None:
        op_id = _current_operation.get()
        if op_id is None:
            self.original.flush()
        elif op_id in self._partial:
            self._emit(op_id, self._partial.pop(op_id))

    def _emit(self, op_id: str, line: str) -> None:
        self._handler.write(op_id, self._level, self._name, line.rstrip("\r"), time.time())

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno … of the real stream
        return getattr(self.original, name)


class LogCapture:
    """Installs the handler, the streams and the warnings hook; scopes all three to an operation."""

    def __init__(self, store: OperationLogStore) -> None:
        self.store = store
        self._handler = OperationLogHandler(store)
        self._levels: list[tuple[logging.Logger, int]] = []
        self._streams: tuple[OperationStream, OperationStream] | None = None
        self._showwarning: Any = None

    def install(self) -> None:
        logging.getLogger().addHandler(self._handler)
        for name in INFO_LOGGERS:
            target = logging.getLogger(name)
            self._levels.append((target, target.level))
            if target.getEffectiveLevel() > logging.INFO:
                target.setLevel(logging.INFO)
        self._streams = (
            OperationStream(sys.stdout, self._handler, "stdout", "INFO"),
            OperationStream(sys.stderr, self._handler, "stderr", "WARNING"),
        )
        sys.stdout, sys.stderr = self._streams
        self._showwarning = warnings.showwarning
        warnings.showwarning = self._warning

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self._handler)
        for target, level in self._levels:
            target.setLevel(level)
        self._levels.clear()
        if self._streams is not None:
            # Put back what was there, unless someone replaced our streams meanwhile.
            if sys.stdout is self._streams[0]:
                sys.stdout = self._streams[0].original
            if sys.stderr is self._streams[1]:
                sys.stderr = self._streams[1].original
            self._streams = None
        if self._showwarning is not None:
            if warnings.showwarning == self._warning:
                warnings.showwarning = self._showwarning
            self._showwarning = None

    def _warning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        op_id = _current_operation.get()
        if op_id is None:
            self._showwarning(message, category, filename, lineno, file, line)
            return
        text = f"{category.__name__}: {message} ({filename}:{lineno})"
        self._handler.write(op_id, "WARNING", "py.warnings", text, time.time())

    @contextmanager
    def capture(self, op_id: str) -> Iterator[None]:
        token = _current_operation.set(op_id)
        try:
            yield
        finally:
            if self._streams is not None:
                for stream in self._streams:
                    stream.flush()
            _current_operation.reset(token)
