"""RayClusterMonitor: the Ray cluster of ray mode, checked in the background, answered from the cache.

Like the host registry, a request never waits on the cluster: ``state()`` is the last snapshot. One
check runs at start (bounded by the request timeout), then one every interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from backend.domain.ports import Clock, RayJobs
from backend.domain.ray_cluster import RayClusterState
from backend.errors import RayError

logger = logging.getLogger(__name__)


class RayClusterMonitor:
    def __init__(self, jobs: RayJobs, clock: Clock, *, interval_s: float = 5.0) -> None:
        self.jobs = jobs
        self._clock = clock
        self._interval = interval_s
        self._state = RayClusterState(address=jobs.address, error="not checked yet")
        self._task: asyncio.Task[None] | None = None

    def state(self) -> RayClusterState:
        return self._state

    def is_available(self) -> bool:
        return self._state.healthy

    def has_free_gpu(self) -> bool:
        return self._state.healthy and self._state.free_gpus >= 1

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ray-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check(self) -> RayClusterState:
        previous = self._state
        try:
            state = await asyncio.to_thread(self.jobs.cluster)
        except RayError as exc:
            if previous.healthy or previous.checked_at is None:
                logger.warning("Ray cluster at %s is down: %s", self.jobs.address, exc.message)
            state = replace(previous, healthy=False, checked_at=self._clock.now(), error=exc.message)
        else:
            if not previous.healthy:
                logger.info(
                    "Ray cluster at %s is up: Ray %s, %d node(s), %g CPU(s), %g GPU(s)",
                    state.address,
                    state.version,
                    state.nodes,
                    state.cpus,
                    state.gpus,
                )
        self._state = state
        return state

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                logger.exception("Ray health check failed")
            await asyncio.sleep(self._interval)
