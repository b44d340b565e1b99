"""Randomness scoped to one fit, so fits running in parallel threads stay reproducible.

What is per fit (never shared between threads):

- the fit's :class:`torch.Generator` (``Trainer.generator``), seeded with ``TrainerConfig.seed`` on the
  training device. :class:`GeneratorDropout` layers (the built-in MLP uses them) draw their masks
  from it; data modules and models may draw from it too.

What stays process-wide (torch, numpy and Python keep one global state per process, not per thread):

- the global RNGs (``torch``, ``numpy.random``, ``random``). A fit seeds them for providers that draw
  from them (``nn.Dropout``, ``torch.rand`` without a generator) and restores the caller's state when it
  ends, but two fits running at once share them, so such providers are reproducible only when one fit
  runs at a time. Use :class:`GeneratorDropout` / the fit's generator to be reproducible in parallel. A plugin's
  factory runs under the same scoped seeding, so a module it builds starts from the request's seed.
- deterministic kernels (``torch.use_deterministic_algorithms``) and ``cudnn.benchmark``. They are
  touched only by fits with ``deterministic=True``: the first such fit switches them on, the last one
  to end restores what was there before; meanwhile every fit in the process runs with them.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional

_deterministic_lock = threading.Lock()
_deterministic_users = 0
_saved_deterministic: tuple[bool, bool, bool] = (False, False, False)


def seed_everything(seed: int) -> None:
    """Seed the process-wide RNGs of python, numpy and torch (not scoped: prefer :func:`scoped_seed`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit_generator(seed: int, device: torch.device) -> torch.Generator | None:
    """A generator seeded with ``seed`` on ``device``; None where the backend has no such generator."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:
        return None


@contextmanager
def scoped_seed(seed: int, device: torch.device) -> Iterator[torch.Generator | None]:
    """Seed the global RNGs for the block (a fit, a plugin's factory), restore the caller's states
    after it; yield a generator seeded with ``seed`` on ``device``."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(
        devices=devices, device_type=device.type if device.type in ("cuda", "mps") else None
    ):
        try:
            seed_everything(seed)
            yield fit_generator(seed, device)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


@contextmanager
def deterministic_kernels(enabled: bool) -> Iterator[None]:
    """With ``enabled``, force deterministic torch kernels while any such fit runs; else touch nothing."""
    if not enabled:
        yield
        return
    _enter_deterministic()
    try:
        yield
    finally:
        _leave_deterministic()


def _enter_deterministic() -> None:
    global _deterministic_users, _saved_deterministic
    with _deterministic_lock:
        if _deterministic_users == 0:
            _saved_deterministic = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark,
            )
            # cuBLAS needs a fixed workspace for reproducible matmuls; harmless without CUDA.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        _deterministic_users += 1


def _leave_deterministic() -> None:
    global _deterministic_users
    with _deterministic_lock:
        _deterministic_users -= 1
        if _deterministic_users == 0:
            enabled, warn_only, benchmark = _saved_deterministic
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
            torch.backends.cudnn.benchmark = benchmark


class GeneratorDropout(nn.Module):
    """``nn.Dropout`` that draws its masks from ``generator`` (set by the trainer to the fit's one), so
    parallel fits do not share a random stream. Without a generator it is plain global-RNG dropout.
    It holds no parameters or buffers: state dicts are the same as with ``nn.Dropout``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None or self.generator.device.type != x.device.type:
            return functional.dropout(x, self.p, training=True)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attach_generator(module: nn.Module, generator: torch.Generator | None) -> int:
    """Hand ``generator`` to every :class:`GeneratorDropout` inside ``module``; returns how many."""
    layers = [m for m in module.modules() if isinstance(m, GeneratorDropout)]
    for layer in layers:
        layer.generator = generator
    return len(layers)
