"""Imported by the host's fork server before it forks any training (its preload list), never elsewhere.

A fork server's preload can only import modules, so importing this one does, once per fork server, what
every training's fresh process would otherwise pay at first use (``shared.trainkit.warm_start``): numba
loading each indicator kernel from its cache (its CPU target and registries too), torch's first
forward, backward and optimizer step, and the git commit a run record names (two ``git`` calls). The children forked afterwards inherit
it all; the commit is the one of the code the server imported, which is the code they run. Each child
warms up once more, on its training's own thread count, while it waits idle for its session
(``host_service.worker.serve_one_session``).

Torch's step runs with one intra-op thread, so it never starts torch's OpenMP pool: GNU OpenMP is not
fork-safe, and a child forked after the pool started could hang at its first parallel region. The
thread count is restored afterwards (the pool starts in each child, at its own first use).
``tests/host_service/test_worker_preload.py`` checks that the warm-up leaves no thread behind. (numba
loads SciPy, whose OpenBLAS starts its threads at load, as NumPy's does at import: OpenBLAS stops
and restarts them around a fork.)
"""

from __future__ import annotations

from shared.trainkit import provenance
from shared.trainkit.warm_start import load_training_stack

load_training_stack()
provenance.git_commit()  # cached for the process's life, forked children included
