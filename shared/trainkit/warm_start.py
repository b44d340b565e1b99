"""What a training loads on first use, loaded ahead of the first training: the modules it imports that
are slow (numba's kernels, ``torch._dynamo``, the workloads), each indicator kernel, and torch's first
forward, backward and optimizer step.

Two processes do it once, before any training: the host's fork server (its children then start warm;
``host_service.adapters.worker_preload``) and the backend, which runs local trainings in-process on a
worker thread (``backend.server``: it then freezes all of it out of the garbage collector). The module
imports its heavy dependencies inside its functions: the host's main process reads
:data:`TRAINING_MODULES` without loading any of them.
"""

from __future__ import annotations

import importlib

#: The modules a training imports that are slow to import, in import order.
TRAINING_MODULES = (
    "shared.trainkit.workloads.strategy.workload",
    "shared.trainkit.workloads.strategy.kernels",  # numba, imported lazily elsewhere: half a second
    "shared.trainkit.workloads.tabular",
    "shared.trainkit.workloads.command.workload",
    # A torch optimizer imports torch._dynamo (and with it sympy) when it is first built: seconds.
    "torch._dynamo",
)


def load_training_stack() -> None:
    """Import :data:`TRAINING_MODULES`, load every indicator kernel and take one training step."""
    for name in TRAINING_MODULES:
        importlib.import_module(name)
    from shared.trainkit.workloads.strategy import indicators

    indicators.warm_up()
    warm_up_training_step()


def warm_up_training_step(threads: int = 1) -> None:
    """One optimizer step and one evaluation of a tiny MLP, as the trainer takes them, on ``threads``
    torch threads: one (the default) never starts torch's OpenMP pool, which a forked child could hang
    on; a process never forked from (the host's idle worker) warms up on its training's count."""
    import torch

    from shared.trainkit.models import MLPSpec, build_model

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build_model(MLPSpec(input_dim=4, output_dim=3))
        optimizer = model.configure_optimizers(1e-3)
        batch = (torch.zeros(8, 4), torch.zeros(8, dtype=torch.long))
        model.training_step(batch, 0).loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        model.eval()
        with torch.no_grad():
            model.validation_step(batch, 0)
    finally:
        torch.set_num_threads(saved)
