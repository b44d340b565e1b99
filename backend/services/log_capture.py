"""Capture what a training logs, per operation, while it runs on a worker thread.

The runner sets the operation id in a context variable for the duration of the run; one handler on
the trainkit (and backend) loggers routes every record carrying that id to the operation's log store.
Records from other threads (or other operations) never leak into an operation's log.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from backend.domain.ports import LogRecordLine, OperationLogStore

CAPTURED_LOGGERS = ("shared.trainkit", "backend.services.local_runner")

_current_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modelyard_operation", default=None
)


class OperationLogHandler(logging.Handler):
    def __init__(self, store: OperationLogStore) -> None:
        super().__init__(level=logging.INFO)
        self._store = store
        self._seq = itertools.count()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        op_id = _current_operation.get()
        if op_id is None:
            return
        try:
            message = self.format(record)
            line = LogRecordLine(
                seq=next(self._seq),
                at=datetime.fromtimestamp(record.created, tz=UTC),
                level=record.levelname,
                logger=record.name,
                message=message,
            )
            self._store.append(op_id, line)
        except Exception:
            self.handleError(record)


class LogCapture:
    """Installs the handler on the captured loggers and scopes records to an operation."""

    def __init__(self, store: OperationLogStore) -> None:
        self.store = store
        self._handler = OperationLogHandler(store)
        self._installed: list[tuple[logging.Logger, int]] = []

    def install(self) -> None:
        for name in CAPTURED_LOGGERS:
            target = logging.getLogger(name)
            target.addHandler(self._handler)
            self._installed.append((target, target.level))
            # INFO records must reach the handler even when the root logger is at WARNING.
            if target.getEffectiveLevel() > logging.INFO:
                target.setLevel(logging.INFO)

    def uninstall(self) -> None:
        for target, level in self._installed:
            target.removeHandler(self._handler)
            target.setLevel(level)
        self._installed.clear()

    @contextmanager
    def capture(self, op_id: str) -> Iterator[None]:
        token = _current_operation.set(op_id)
        try:
            yield
        finally:
            _current_operation.reset(token)
