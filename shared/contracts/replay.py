"""ReplayGuard: every signed message's ``webhook-id`` is remembered while its timestamp is acceptable.

A signature is accepted while its timestamp is within the tolerance of the receiver's clock, so an id
must be remembered until ``timestamp + tolerance``; after that the signature itself is refused as stale.
Memory is bounded by ``capacity``: when that many ids are live, a new one is refused (retryable, 503)
rather than an old one forgotten early, which would reopen the window for a replay. Only messages whose
signature verified are remembered, so an unsigned flood cannot fill the guard.

In memory and per process: a receiver that restarts forgets (the host service's endpoints are
idempotent, see docs/operations.md). The backend keeps the same memory in its database instead
(``backend.adapters.db.replay.SqlReplayGuard``), shared by every backend instance on it.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

DEFAULT_REPLAY_CAPACITY = 100_000


class ReplayError(Exception):
    """A signed message must be refused: ``code`` is ``replayed`` (409) or ``replay_guard_full`` (503)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ReplayGuard:
    def __init__(
        self,
        tolerance_s: int,
        *,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if capacity < 1:
            raise ValueError("a replay guard needs room for at least one id")
        self.tolerance_s = tolerance_s
        self.capacity = capacity
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []
        # Sync routes run in a thread pool, async ones on the loop: both reach the same guard.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._forget_expired(self._clock())
            return len(self._expiry)

    def remember(self, msg_id: str, timestamp: int) -> None:
        """Record ``msg_id``; raise ReplayError when it was seen before or there is no room."""
        with self._lock:
            now = self._clock()
            self._forget_expired(now)
            if msg_id in self._expiry:
                raise ReplayError(
                    "replayed",
                    f"message {msg_id[:80]!r} was already received; a signed message is accepted once "
                    "(a retry must be signed afresh with a new webhook-id)",
                )
            if len(self._expiry) >= self.capacity:
                raise ReplayError(
                    "replay_guard_full",
                    f"{self.capacity} signed messages were received within {self.tolerance_s} s; "
                    "refusing more until older ones expire",
                )
            expires = float(timestamp + self.tolerance_s)
            self._expiry[msg_id] = expires
            heapq.heappush(self._queue, (expires, msg_id))

    def _forget_expired(self, now: float) -> None:
        while self._queue and self._queue[0][0] < now:
            _, msg_id = heapq.heappop(self._queue)
            self._expiry.pop(msg_id, None)
