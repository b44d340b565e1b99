"""How many torch threads a training gets: one fewer than the cores this process may run on (at least
one), on the backend (in-process trainings) and on a host (each training's process) alike.

With torch's default of one thread per core a training's threads take every core, spinning between
operations, and whatever else must answer (the backend's event loop, a host's API and session follower)
waits for the scheduler; a small model gains nothing from the last core. On a busy 2-core machine a
host's 5-epoch training took 2-3.6 s on two threads and 0.05-0.1 s on one
(``benchmarks/host_overhead.py``). Torch-free: a host's main
process reads it without importing torch.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_training_threads(cores: int | None = None) -> int:
    """Torch threads of a training on ``cores`` cores (this process's when None): one fewer, at least one."""
    return max(1, (cores or available_cores()) - 1)
