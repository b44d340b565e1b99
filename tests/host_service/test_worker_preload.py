"""The fork server's warm-up (``worker_preload``) starts no thread of its own: torch's OpenMP pool, which
a child forked after it started could hang on, stays unstarted, and torch's thread count is unchanged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from host_service.adapters.worker_process import WORKER_MODULES

pytestmark = pytest.mark.slow

PRELOAD = "host_service.adapters.worker_preload"
# Prints the process's native threads and torch's intra-op thread setting after the given statements.
PROBE = """
import json, os, torch
{statements}
print(json.dumps([len(os.listdir("/proc/self/task")), torch.get_num_threads()]))
"""


def _threads_after(*statements: str) -> list[int]:
    code = PROBE.format(statements="\n".join(statements))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    counts: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="threads counted from /proc; forks on Linux only"
)
def test_warm_up_starts_no_thread_beyond_what_importing_the_libraries_starts() -> None:
    assert WORKER_MODULES[-1] == PRELOAD  # it warms up what the modules before it imported
    imports = [f"import {module}" for module in WORKER_MODULES[:-1]]
    # The reference also loads the indicator kernels: numba loads SciPy, whose OpenBLAS starts its
    # (fork-safe) threads at load, as NumPy's does at import.
    reference = _threads_after(
        *imports, "from shared.trainkit.workloads.strategy import indicators", "indicators.warm_up()"
    )
    warmed = _threads_after(*imports, f"import {PRELOAD}")
    assert warmed == reference
