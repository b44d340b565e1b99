"""HostRegistry: every configured host, health-checked in the background, answered from the cache.

A request never waits on a host: ``is_available`` / ``has_gpu`` / ``place`` read the last snapshot. The
checks run concurrently on the event loop with the client's short health timeout, so one dead host
delays nobody. ``reserve``/``release`` count dispatches in flight, so two dispatches between two
checks do not both pick a host's last slot (the host's own atomic claim is the final word).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import replace

from backend.domain.hosts import HostCensus, HostState, census_of, choose_host
from backend.domain.ports import Clock, HostClient
from backend.errors import HostError

logger = logging.getLogger(__name__)


class HostRegistry:
    def __init__(
        self, urls: Sequence[str], client: HostClient, clock: Clock, *, interval_s: float = 5.0
    ) -> None:
        self._client = client
        self._clock = clock
        self._interval = interval_s
        self._lock = threading.Lock()
        self._states: dict[str, HostState] = {url: HostState(url=url) for url in urls}
        self._reserved: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def urls(self) -> list[str]:
        return list(self._states)

    # --- the cached answers (HostAvailability) ---------------------------------------------------

    def states(self) -> list[HostState]:
        with self._lock:
            return list(self._states.values())

    def state_of(self, url: str) -> HostState | None:
        with self._lock:
            return self._states.get(url)

    def is_available(self) -> bool:
        return any(s.healthy for s in self.states())

    def has_gpu(self) -> bool:
        return any(s.healthy and s.has_gpu for s in self.states())

    def census(self) -> HostCensus:
        return census_of(self.states())

    def place(self, *, exclude: Sequence[str] = (), require_gpu: bool = False) -> str | None:
        """Reserve a slot on the best healthy host with room; None when every host is down or full."""
        with self._lock:
            best = choose_host(
                self._states.values(), reserved=self._reserved, exclude=exclude, require_gpu=require_gpu
            )
            if best is None:
                return None
            self._reserved[best.url] = self._reserved.get(best.url, 0) + 1
            return best.url

    def release(self, url: str) -> None:
        """A reservation from ``place`` ends (the host claimed the slot itself, or the start failed)."""
        with self._lock:
            left = self._reserved.get(url, 0) - 1
            if left > 0:
                self._reserved[url] = left
            else:
                self._reserved.pop(url, None)

    def claimed(self, url: str) -> None:
        """The host confirmed a new session: count it until the next health check reports it."""
        with self._lock:
            state = self._states.get(url)
            if state is not None:
                self._states[url] = replace(state, in_use=state.in_use + 1)
        self.release(url)

    def session_ended(self, url: str) -> None:
        """A session there ended: its slot is free again (until the next check says otherwise)."""
        with self._lock:
            state = self._states.get(url)
            if state is not None and state.in_use > 0:
                self._states[url] = replace(state, in_use=state.in_use - 1)
        self._changed.set()

    def mark_down(self, url: str, reason: str) -> None:
        """A call to the host failed: stop placing work there until a check succeeds again."""
        with self._lock:
            state = self._states.get(url)
            if state is not None and state.healthy:
                logger.warning("host %s marked unhealthy: %s", url, reason)
                self._states[url] = replace(state, healthy=False, error=reason)

    async def wait_for_change(self, timeout_s: float) -> None:
        """Sleep until the next health round finishes (a slot may have freed up) or ``timeout_s``."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    # --- the background checks -------------------------------------------------------------------

    async def start(self) -> None:
        """One round now (bounded by the health timeout), then one every interval in the background."""
        if not self._states:
            return
        self._changed = asyncio.Event()
        await self.check_all()
        self._task = asyncio.create_task(self._loop(), name="host-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(url) for url in self.urls))
        self._changed.set()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check_all()
            except Exception:
                logger.exception("host health round failed")

    async def _check(self, url: str) -> None:
        now = self._clock.now()
        try:
            health = await self._client.health(url)
        except HostError as exc:
            with self._lock:
                previous = self._states[url]
                if previous.healthy:
                    logger.warning("host %s is down: %s", url, exc.message)
                self._states[url] = replace(previous, healthy=False, checked_at=now, error=exc.message)
            return
        with self._lock:
            if not self._states[url].healthy:
                logger.info("host %s is up: %s (%s)", url, health.device.kind, health.device.name)
            self._states[url] = HostState(
                url=url,
                healthy=True,
                device_kind=health.device.kind,
                device_name=health.device.name,
                capacity=health.capacity,
                in_use=health.sessions_in_use,
                version=health.version,
                checked_at=now,
                last_ok_at=now,
            )
