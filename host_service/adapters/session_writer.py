"""Session records written behind the event loop: ``session.json`` without an fsync on the loop.

Every write of a session's state goes through one writer thread. ``save`` takes a snapshot of the
session (``Session.to_record`` copies it) and returns at once; the thread writes it with the store's
atomic, durable write (temp file, fsync, rename, fsync of the folder: a crash leaves the old file or the
new one, never half of one). Writes are ordered: one thread writes, and a session's newer snapshot
replaces an older one still waiting (latest state wins; a state is never overwritten by an earlier one).
``save`` returns a future that resolves once that snapshot (or a later one) is on disk, for the caller
that must not go on before (acknowledge: the result's files go only after the record says so).
``flush`` waits for everything saved so far; ``close`` flushes and ends the thread.

What a lost write costs is bounded by recovery (``SessionService.recover``): a session found live with a
complete result becomes completed and its result is sent again (the backend ignores a duplicate), one
found live without a result fails ``host_restarted``.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any, Protocol

from host_service.domain.sessions import Session

logger = logging.getLogger(__name__)

#: How long ``close`` waits for queued writes to reach the disk.
CLOSE_WAIT_S = 10.0


class RecordStore(Protocol):
    def write_record(self, session_id: str, record: dict[str, Any]) -> None: ...


class SessionWriter:
    def __init__(self, store: RecordStore) -> None:
        self._store = store
        self._pending: dict[str, tuple[dict[str, Any], list[Future[None]]]] = {}
        self._changed = threading.Condition()
        self._writing = False
        self._closed = False
        self._thread = threading.Thread(target=self._write_forever, name="session-writer", daemon=True)
        self._thread.start()

    def save(self, session: Session) -> Future[None]:
        """Queue ``session``'s current state; the future resolves once it (or a later state) is on
        disk, or carries the write's error."""
        record = session.to_record()
        written: Future[None] = Future()
        with self._changed:
            if self._closed:
                raise RuntimeError("the session writer is closed")
            _, waiting = self._pending.pop(session.session_id, (None, []))
            # Re-inserted at the end: the dict's order is the order the writes happen in.
            self._pending[session.session_id] = (record, [*waiting, written])
            self._changed.notify_all()
        return written

    def flush(self, timeout: float = CLOSE_WAIT_S) -> bool:
        """Wait until every state saved so far is on disk; False when ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._writing, timeout)

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        if not self.flush(timeout):
            logger.error("session states still unwritten after %.0f s at shutdown", timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _write_forever(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed, nothing left
                session_id = next(iter(self._pending))
                record, waiting = self._pending.pop(session_id)
                self._writing = True
            try:
                self._write(session_id, record, waiting)
            finally:
                with self._changed:
                    self._writing = False
                    self._changed.notify_all()

    def _write(self, session_id: str, record: dict[str, Any], waiting: list[Future[None]]) -> None:
        try:
            self._store.write_record(session_id, record)
        except Exception as exc:  # the next state of the session is written all the same
            logger.exception("could not write the state of session %s", session_id)
            for future in waiting:
                if future.set_running_or_notify_cancel():  # False: its waiter was cancelled meanwhile
                    future.set_exception(exc)
            return
        for future in waiting:
            if future.set_running_or_notify_cancel():
                future.set_result(None)
