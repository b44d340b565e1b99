"""StaleModelSweeper: removes what crashed model saves left in the store, at start and periodically,
and what crashed result ingests and ended Ray jobs left among the Ray uploads (any further cleanups
given).

At start this process has no save in flight, so when no other backend is alive every leftover goes at
once; otherwise (and every ``interval_s`` while running) only leftovers older than ``max_age_s`` go, as
a younger temp folder may be a save another backend (or this one) is still writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

Cleanup = Callable[[float], list[str]]


class StaleModelSweeper:
    def __init__(
        self,
        cleanup: Cleanup | None,
        *more: Cleanup,
        interval_s: float = 600.0,
        max_age_s: float = 3600.0,
    ) -> None:
        self._cleanups = [c for c in (cleanup, *more) if c is not None]
        self._interval_s = interval_s
        self._max_age_s = max_age_s
        self._task: asyncio.Task[None] | None = None

    def sweep(self, *, everything: bool = False) -> list[str]:
        """Each cleanup in turn; one that fails (a database error, a folder it cannot read) is logged
        and the others still run: a leftover waits for the next sweep, it never stops a start."""
        removed = []
        for cleanup in self._cleanups:
            try:
                removed += cleanup(0.0 if everything else self._max_age_s)
            except Exception:
                logger.exception("a sweep of crash leftovers failed (%s); retried later", cleanup)
        if removed:
            logger.warning("removed %d crash leftover(s): %s", len(removed), removed)
        return removed

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name="crash-leftover-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:
                logger.exception("sweeping crash leftovers failed")
