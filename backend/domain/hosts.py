"""Host services as the backend sees them: cached health, placement, and the lease that bounds silence.

Pure: no HTTP, no clock of its own. The registry fills :class:`HostState` from background health checks;
placement and the lease are decided here from those snapshots alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

CPU_KIND = "cpu"


@dataclass(frozen=True)
class HostState:
    """The last health check of one host. ``healthy`` is False until a check succeeds."""

    url: str
    healthy: bool = False
    device_kind: str | None = None
    device_name: str | None = None
    capacity: int = 0
    in_use: int = 0
    version: str | None = None
    checked_at: datetime | None = None
    last_ok_at: datetime | None = None
    error: str | None = None

    @property
    def has_gpu(self) -> bool:
        return self.device_kind is not None and self.device_kind != CPU_KIND

    @property
    def free_slots(self) -> int:
        return max(self.capacity - self.in_use, 0)


def choose_host(
    states: Iterable[HostState],
    *,
    reserved: Mapping[str, int] | None = None,
    exclude: Iterable[str] = (),
    require_gpu: bool = False,
) -> HostState | None:
    """The healthy host to dispatch to: a free slot (after ``reserved`` in-flight dispatches), GPU hosts
    first, then the most free slots, then the order hosts were configured in. None when none fits."""
    reserved = reserved or {}
    skipped = set(exclude)
    candidates = [
        (index, state)
        for index, state in enumerate(states)
        if state.healthy
        and state.url not in skipped
        and state.free_slots - reserved.get(state.url, 0) > 0
        and (state.has_gpu or not require_gpu)
    ]
    if not candidates:
        return None
    _, best = min(
        candidates,
        key=lambda item: (not item[1].has_gpu, -(item[1].free_slots - reserved.get(item[1].url, 0)), item[0]),
    )
    return best


@dataclass
class HostLease:
    """How long a host may stay silent about one operation before the operation is declared lost.

    ``renew`` on every answer from the host; ``expired`` once ``lease_s`` passed without one.
    Times are monotonic seconds, injected by the caller.
    """

    lease_s: float
    last_contact: float

    def renew(self, now: float) -> None:
        self.last_contact = now

    def silent_for(self, now: float) -> float:
        return max(now - self.last_contact, 0.0)

    def expired(self, now: float) -> bool:
        return self.silent_for(now) > self.lease_s


def next_poll_interval(current: float, *, initial: float, maximum: float, changed: bool) -> float:
    """Status polling: back to ``initial`` when something changed, else 1.5x up to ``maximum``."""
    if changed:
        return initial
    return min(max(current, initial) * 1.5, maximum)


@dataclass(frozen=True)
class HostCensus:
    """How many configured hosts could take a training right now, by what they lack."""

    configured: int = 0
    healthy: int = 0
    with_free_slot: int = 0
    with_gpu: int = 0
    with_gpu_and_free_slot: int = 0

    def usable(self, *, require_gpu: bool) -> int:
        return self.with_gpu if require_gpu else self.healthy

    def missing(self, *, require_gpu: bool) -> str:
        """What keeps host mode from running this training, and what the user can do; "" when nothing."""
        if self.configured == 0:
            return (
                "no host service is configured (MODELYARD_HOSTS is empty); start one with "
                "`modelyard host` on the training machine and list its URL in MODELYARD_HOSTS"
            )
        if self.healthy == 0:
            return (
                f"no host service is healthy (0 of {self.configured} configured answered its last health "
                "check); start it (`modelyard host`) or see GET /api/v1/system for each host's state"
            )
        if require_gpu and self.with_gpu == 0:
            return (
                f"none of the {self.healthy} healthy host service(s) has a GPU (they train on CPU); start a "
                "host on a CUDA or Apple-silicon machine, or drop require_gpu"
            )
        return ""

    def busy(self, *, require_gpu: bool) -> str:
        """Why a usable host cannot start it at once; "" when one has a free slot."""
        free = self.with_gpu_and_free_slot if require_gpu else self.with_free_slot
        if free > 0:
            return ""
        return (
            f"every one of the {self.usable(require_gpu=require_gpu)} usable host service(s) has no free "
            "slot; the training waits (pending) for one, or cancel it and use execution_mode local"
        )


def census_of(states: Iterable[HostState]) -> HostCensus:
    states = list(states)
    healthy = [s for s in states if s.healthy]
    return HostCensus(
        configured=len(states),
        healthy=len(healthy),
        with_free_slot=sum(1 for s in healthy if s.free_slots > 0),
        with_gpu=sum(1 for s in healthy if s.has_gpu),
        with_gpu_and_free_slot=sum(1 for s in healthy if s.has_gpu and s.free_slots > 0),
    )
