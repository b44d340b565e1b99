"""Scoped timers of a run: every timed block becomes one event in ``telemetry.jsonl`` and feeds rollups.

An event is ``{"name", "start" (wall clock, unix seconds), "duration_s", "ok", "error" (the exception's
type name, or None), **attrs}``. A timer emits its event also when its block raises, then re-raises.

The caller's thread never does file I/O: events go through a bounded queue to one background writer
thread that keeps the file open for the run. When the queue is full (the disk stalls) the event is
dropped from the file, never waited for; it still counts in the rollups, and each name's rollup reports
how many of its events are missing from the file (``dropped``). Rollups are computed in memory from all
events (see :class:`~shared.trainkit.rollups.DurationRollup` for the bound on their memory).

Thread-safe: timers may run concurrently in several threads.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from shared.trainkit.jsonl_writer import JsonLinesWriter
from shared.trainkit.rollups import DurationRollup

logger = logging.getLogger(__name__)

#: Attribute value types an event can carry (they serialize to JSON as they are).
AttrValue = str | int | float | bool | None

_RESERVED: Final = frozenset({"name", "start", "duration_s", "ok", "error"})


class Telemetry:
    """Records timed events of one run to ``path`` (JSON lines) and rolls them up per name.

    ``path=None`` keeps rollups only (no file, no thread). ``clock`` measures durations, ``wall`` stamps
    the start of an event; ``max_queue`` bounds the events waiting for the writer; ``max_samples`` the
    durations kept per name for the percentiles.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
        max_queue: int = 10_000,
        max_samples: int = 100_000,
    ) -> None:
        self.path = path
        self.clock = clock
        self.wall = wall
        self._max_samples = max_samples
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._rollups: dict[str, DurationRollup] = {}
        self._dropped: dict[str, int] = {}
        self._writer = (
            JsonLinesWriter(path, max_pending=max_queue, on_lost=self._lost, thread_name=f"telemetry:{path}")
            if path is not None
            else None
        )

    @classmethod
    def disabled(cls) -> Telemetry:
        """Rollups only: for code paths that time blocks but keep no run record."""
        return cls(None)

    @property
    def dropped(self) -> int:
        """Events missing from the file so far (queue full, writer failed, or recorded after close)."""
        with self._lock:
            return sum(self._dropped.values())

    @contextmanager
    def timer(self, name: str, **attrs: AttrValue) -> Iterator[None]:
        """Time the block; its event is emitted on exit, with ``ok=False`` and ``error`` when it raises."""
        _check_attrs(attrs)
        start = self.wall()
        began = self.clock()
        try:
            yield
        except BaseException as exc:
            self._emit(name, start, self.clock() - began, False, type(exc).__name__, attrs)
            raise
        self._emit(name, start, self.clock() - began, True, None, attrs)

    def record(
        self, name: str, duration_s: float, *, ok: bool = True, error: str | None = None, **attrs: AttrValue
    ) -> None:
        """Emit an event for a duration measured elsewhere (e.g. between two callbacks); it started
        ``duration_s`` ago."""
        _check_attrs(attrs)
        self._emit(name, self.wall() - duration_s, duration_s, ok, error, attrs)

    def rollups(self) -> dict[str, dict[str, float | int]]:
        """Per name: count, total_s, mean_s, p50_s, p95_s, max_s and dropped (events not in the file)."""
        with self._lock:
            snapshot = {name: rollup.copy() for name, rollup in self._rollups.items()}
            dropped = dict(self._dropped)
        return {
            name: {**rollup.as_dict(), "dropped": dropped.get(name, 0)}
            for name, rollup in sorted(snapshot.items())
        }

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush the file and stop the writer thread; idempotent. Later events count in rollups only."""
        if self._writer is not None and not self._writer.close(timeout_s):
            logger.warning("telemetry writer for %s did not finish within %.1fs", self.path, timeout_s)

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _emit(
        self,
        name: str,
        start: float,
        duration_s: float,
        ok: bool,
        error: str | None,
        attrs: dict[str, AttrValue],
    ) -> None:
        with self._lock:
            rollup = self._rollups.get(name)
            if rollup is None:
                rollup = self._rollups[name] = DurationRollup(self._max_samples, rng=self._rng)
            rollup.add(duration_s)
        if self._writer is None:
            return
        event = {"name": name, "start": start, "duration_s": duration_s, "ok": ok, "error": error, **attrs}
        if not self._writer.put(event):
            self._lost(event)

    def _lost(self, event: Mapping[str, Any]) -> None:
        name = str(event.get("name"))
        with self._lock:
            self._dropped[name] = self._dropped.get(name, 0) + 1


def _check_attrs(attrs: Mapping[str, AttrValue]) -> None:
    if attrs and not _RESERVED.isdisjoint(attrs):
        raise ValueError(f"telemetry attributes may not be named {sorted(_RESERVED & attrs.keys())}")
