"""Fan-out of operation events to SSE subscribers and in-process listeners, safe to publish from the
training thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.domain.operations import Operation

logger = logging.getLogger(__name__)

QUEUE_SIZE = 256


@dataclass(frozen=True)
class OperationEvent:
    """``kind`` is ``progress`` or ``status`` (a lifecycle change); ``operation`` is the state after it."""

    kind: str
    operation: Operation


@dataclass(frozen=True)
class QueueMoved:
    """Some operation left the pending queue: every pending operation behind it moved up one place."""


QUEUE_MOVED = QueueMoved()
StreamItem = OperationEvent | QueueMoved | None
Listener = Callable[[OperationEvent], None]


class ProgressThrottle:
    """At most one progress event per ``interval_s`` per client; lifecycle events are never held."""

    def __init__(self, interval_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_s
        self._monotonic = monotonic
        self._last = -math.inf

    def wait_s(self) -> float:
        """Seconds until the next progress event may go out (0: now)."""
        return max(0.0, self._last + self._interval - self._monotonic())

    def sent(self) -> None:
        self._last = self._monotonic()


class Subscription:
    def __init__(self, broker: EventBroker, op_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.op_id = op_id
        self.loop = loop
        self.queue: asyncio.Queue[StreamItem] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._broker = broker

    def offer(self, event: StreamItem) -> None:
        """Runs on the subscriber's loop. A slow reader loses old progress, never the end (None)."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(event)

    def close(self) -> None:
        self._broker.unsubscribe(self)


class EventBroker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[Subscription]] = {}
        self._listeners: list[Listener] = []
        self._closed = False

    def listen(self, listener: Listener) -> None:
        """``listener(event)`` for every event of every operation, on the publishing thread (the training
        thread too): it must only take note, or decide in memory, and return (the sweep driver wakes on it)."""
        with self._lock:
            self._listeners.append(listener)

    def subscribe(self, op_id: str) -> Subscription:
        sub = Subscription(self, op_id, asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                sub.offer(None)
            else:
                self._subs.setdefault(op_id, []).append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.op_id, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(sub.op_id, None)

    def publish(self, event: OperationEvent) -> None:
        with self._lock:
            subs = list(self._subs.get(event.operation.id, ()))
            listeners = list(self._listeners)
        for sub in subs:
            _deliver(sub, event)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's fault must not fail the training that published
                logger.exception("an event listener failed on operation %s", event.operation.id)

    def queue_moved(self) -> None:
        """Tell every stream the pending queue moved (a pending one re-reads its position)."""
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            _deliver(sub, QUEUE_MOVED)

    def close(self) -> None:
        """Server shutdown: end every stream so no SSE response holds the process open."""
        with self._lock:
            self._closed = True
            subs = [s for group in self._subs.values() for s in group]
            self._subs.clear()
        for sub in subs:
            _deliver(sub, None)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(group) for group in self._subs.values())


def _deliver(sub: Subscription, event: StreamItem) -> None:
    # A closed loop means its subscriber is gone: nobody is listening any more.
    with contextlib.suppress(RuntimeError):
        sub.loop.call_soon_threadsafe(sub.offer, event)
