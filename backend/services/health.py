"""The backend's own health: does the database answer? Remembered for a few seconds, because load
balancers, dashboards and pollers ask far more often than the answer can change, and each real check
is a database round trip and a thread hop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HealthStatus:
    """The outcome of one database check; ``error`` names the exception type when it failed."""

    checked_at: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class DatabaseHealth:
    """Pings the database through ``ping`` at most once per ``max_age_s`` (0 checks on every call)."""

    def __init__(
        self, ping: Callable[[], None], *, max_age_s: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ping = ping
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._last: HealthStatus | None = None
        self._lock = threading.Lock()

    def fresh(self) -> HealthStatus | None:
        """The last outcome while it is younger than ``max_age_s``; None when a check is due."""
        last = self._last
        if last is None or self._monotonic() - last.checked_at >= self._max_age_s:
            return None
        return last

    def check(self) -> HealthStatus:
        """Ping now (blocking) unless a concurrent caller just did; remember and return the outcome."""
        with self._lock:  # a burst of callers with a stale answer costs one round trip, not one each
            recent = self.fresh()
            if recent is not None:
                return recent
            try:
                self._ping()
                status = HealthStatus(self._monotonic())
            except Exception as exc:  # any failure of the ping is the answer, whatever its type
                status = HealthStatus(self._monotonic(), error=type(exc).__name__)
            self._last = status
            return status
