"""Backend instances and their leases: which processes share the database, and which of them are gone.

Every backend process registers itself and renews a heartbeat; an operation it runs locally carries its
instance id (``owner_id``). Another process may take such an operation over (fail it as interrupted)
only when its owner is dead: no lease row, a heartbeat older than the lease, or — on the same machine
and pid namespace — a pid that no longer exists (a kill -9 is seen at once, not a lease later).

Pure: no database, no clock of its own, no ``os`` calls (``pid_alive`` is passed in).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


def new_instance_id() -> str:
    return "bk_" + uuid.uuid4().hex[:24]


@dataclass(frozen=True)
class BackendInstance:
    id: str
    hostname: str
    pid: int
    machine_key: str | None
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class Liveness:
    """Decides, from one snapshot of the instances table, whether an owner id is dead."""

    alive: frozenset[str]

    def is_dead(self, owner_id: str | None) -> bool:
        """An operation with no owner (rows from before leases existed) belongs to no live process."""
        return owner_id is None or owner_id not in self.alive


def liveness(
    instances: Iterable[BackendInstance],
    *,
    me: BackendInstance,
    now: datetime,
    lease_s: float,
    pid_alive: Callable[[int], bool],
) -> tuple[Liveness, list[BackendInstance]]:
    """Who is alive, and the dead instances (expired lease, or a vanished pid on this machine)."""
    cutoff = now - timedelta(seconds=lease_s)
    alive, dead = {me.id}, []
    for instance in instances:
        if instance.id == me.id:
            continue
        same_namespace = me.machine_key is not None and instance.machine_key == me.machine_key
        vanished = same_namespace and instance.pid != me.pid and not pid_alive(instance.pid)
        if instance.heartbeat_at < cutoff or vanished:
            dead.append(instance)
        else:
            alive.add(instance.id)
    return Liveness(frozenset(alive)), dead
