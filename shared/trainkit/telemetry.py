"""Scoped timers (placeholder until the telemetry module lands): rollups in memory only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Telemetry:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._durations: dict[str, list[float]] = {}

    @contextmanager
    def timer(self, name: str, **attrs: str | int | float | bool | None) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - started)

    def record(
        self, name: str, duration_s: float, *, ok: bool = True, error: str | None = None, **attrs: object
    ) -> None:
        self._durations.setdefault(name, []).append(duration_s)

    def rollups(self) -> dict[str, dict[str, float | int]]:
        return {n: {"count": len(d), "total_s": sum(d)} for n, d in self._durations.items()}

    def close(self, timeout_s: float = 5.0) -> None:
        return None
