"""Training slots on this host. Checking and claiming a slot is one atomic step under a lock, so two
starts can never share a slot (the check-then-claim race a predecessor system shipped)."""

from __future__ import annotations

import threading

from host_service.errors import CapacityExhaustedError


class CapacityLedger:
    def __init__(self, capacity: int, *, retry_after_s: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.retry_after_s = retry_after_s
        self._holders: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, session_id: str) -> None:
        """Take a slot for ``session_id`` or raise :class:`CapacityExhaustedError`."""
        with self._lock:
            if session_id in self._holders:
                return
            if len(self._holders) >= self.capacity:
                raise CapacityExhaustedError(
                    f"all {self.capacity} training slots of this host are in use; retry later or use "
                    "another host",
                    retry_after_s=self.retry_after_s,
                    capacity=self.capacity,
                )
            self._holders.add(session_id)

    def release(self, session_id: str) -> None:
        with self._lock:
            self._holders.discard(session_id)

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._holders)
