"""SqlReplayGuard: the ids of verified signed messages, remembered in the shared database.

The backend's replay guard: with N backends on one database a message captured on its way to one
replica is refused by every other one too (409 ``replayed``), and a restart forgets nothing. Ids are
kept (as their sha256) until their timestamp leaves the signature tolerance, after which the signature
itself is refused as stale, so the table holds at most one tolerance window of messages; expired rows
are deleted every ``purge_every_s``. The same interface as the in-memory
:class:`shared.contracts.replay.ReplayGuard` (the host service's): ``remember`` or ``ReplayError``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from backend.adapters.db.tables import SignedMessageRow
from shared.contracts.replay import ReplayError

logger = logging.getLogger(__name__)


class SqlReplayGuard:
    def __init__(
        self,
        engine: Engine,
        tolerance_s: int,
        *,
        clock: Callable[[], float] = time.time,
        purge_every_s: float = 60.0,
    ) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.tolerance_s = tolerance_s
        self._clock = clock
        self._purge_every_s = purge_every_s
        self._purged_at = float("-inf")
        self._lock = threading.Lock()

    def remember(self, msg_id: str, timestamp: int) -> None:
        """Record ``msg_id``; ReplayError ``replayed`` when any backend on this database saw it before
        (``replay_guard_full``, retryable, when the database does not answer)."""
        key = hashlib.sha256(msg_id.encode()).hexdigest()
        now = self._clock()
        expires = _at(timestamp + self.tolerance_s)
        try:
            self._purge(now)
            if self._insert(key, expires) or self._reuse_expired(key, expires, now):
                return
        except SQLAlchemyError as exc:
            logger.warning("the replay guard's database did not answer: %s", exc)
            raise ReplayError(
                "replay_guard_full",
                "the database that remembers signed message ids did not answer; retry shortly",
            ) from exc
        raise ReplayError(
            "replayed",
            f"message {msg_id[:80]!r} was already received; a signed message is accepted once "
            "(a retry must be signed afresh with a new webhook-id)",
        )

    def _insert(self, key: str, expires: datetime) -> bool:
        try:
            with self._sessions.begin() as session:
                session.add(SignedMessageRow(id_sha256=key, expires_at=expires))
        except IntegrityError:
            return False
        return True

    def _reuse_expired(self, key: str, expires: datetime, now: float) -> bool:
        """An id remembered past its window (not yet purged) is free again: its old signature is stale."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(SignedMessageRow)
                .where(SignedMessageRow.id_sha256 == key, SignedMessageRow.expires_at < _at(now))
                .values(expires_at=expires)
            )
            return int(getattr(result, "rowcount", 0)) == 1

    def _purge(self, now: float) -> None:
        with self._lock:
            if now - self._purged_at < self._purge_every_s:
                return
            self._purged_at = now
        with self._sessions.begin() as session:
            session.execute(delete(SignedMessageRow).where(SignedMessageRow.expires_at < _at(now)))


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
