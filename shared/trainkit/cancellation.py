"""Cooperative cancellation: a token set by anyone, checked by the training loop between batches."""

from __future__ import annotations

import threading

from shared.trainkit.errors import TrainingCancelledError


class CancelToken:
    """A thread-safe, one-way flag. ``cancel()`` may be called from any thread, any number of times."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason = "cancelled"

    def cancel(self, reason: str = "cancelled by user") -> None:
        self._reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    def raise_if_cancelled(self, where: str = "") -> None:
        """Raise :class:`TrainingCancelledError` if cancelled; ``where`` says at which point it stopped."""
        if self._event.is_set():
            suffix = f" ({where})" if where else ""
            raise TrainingCancelledError(f"training cancelled{suffix}: {self._reason}", where=where)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if cancelled meanwhile."""
        return self._event.wait(timeout)
