"""Which hardware to train on (CUDA > MPS > CPU), what it is, which precision it supports, and how a
batch gets there.

The choices are pure functions of what the machine offers (:func:`choose_device_kind`,
:func:`resolve_precision`) so CPU-only tests cover the CUDA and MPS branches too; only
:func:`select_device` and :func:`describe_device` probe the real hardware.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

import torch

from shared.trainkit.config import DEVICES
from shared.trainkit.errors import ConfigError


def cuda_available() -> bool:
    return torch.cuda.is_available()


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device_kind(request: str, *, cuda: bool, mps: bool) -> str:
    """The device kind for ``request`` given what is available; explicit but absent devices raise."""
    if request not in DEVICES:
        raise ConfigError(
            f"device must be one of {', '.join(DEVICES)}, got {request!r}", field="device", value=request
        )
    if request == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if request == "cuda" and not cuda:
        raise ConfigError(
            "device 'cuda' was requested but CUDA is not available on this machine "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); use device 'auto' or 'cpu'",
            field="device",
            value=request,
        )
    if request == "mps" and not mps:
        raise ConfigError(
            "device 'mps' was requested but Apple MPS is not available on this machine; "
            "use device 'auto' or 'cpu'",
            field="device",
            value=request,
        )
    return request


def select_device(request: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; ``cuda``/``mps`` raise :class:`ConfigError` when absent."""
    return torch.device(choose_device_kind(request, cuda=cuda_available(), mps=mps_available()))


def resolve_precision(precision: str, device_kind: str) -> tuple[str, str | None]:
    """The precision to use on ``device_kind`` and, when it differs from the request, why.

    ``16-mixed`` needs CUDA (it relies on a GradScaler); ``bf16-mixed`` runs on CUDA and CPU; MPS
    trains in full precision (its autocast is not reliable enough for training here).
    """
    if precision == "32":
        return "32", None
    if device_kind == "mps":
        return "32", f"precision {precision!r} is not supported on MPS; training in precision '32' instead"
    if precision == "16-mixed" and device_kind != "cuda":
        return (
            "32",
            f"precision '16-mixed' needs a CUDA device, not {device_kind!r}; training in precision '32'",
        )
    return precision, None


def describe_device(device: torch.device) -> dict[str, Any]:
    """``kind``, ``name`` and ``memory_bytes`` (total memory, where the platform tells) of ``device``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return {"kind": "cuda", "name": props.name, "index": index, "memory_bytes": int(props.total_memory)}
    if device.type == "mps":
        memory = _mps_memory()
        return {"kind": "mps", "name": "Apple MPS", "index": None, "memory_bytes": memory}
    name = platform.processor() or platform.machine() or "cpu"
    return {"kind": device.type, "name": name, "index": None, "memory_bytes": _host_memory()}


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor inside ``batch`` (tensors, tuples, lists, dicts of them) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple):
        return tuple(move_to_device(item, device, non_blocking) for item in batch)
    if isinstance(batch, list):
        return [move_to_device(item, device, non_blocking) for item in batch]
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device, non_blocking) for key, value in batch.items()}
    return batch


def _mps_memory() -> int | None:
    recommended = getattr(getattr(torch, "mps", None), "recommended_max_memory", None)
    if recommended is None:
        return None
    try:
        return int(recommended())
    except RuntimeError:
        return None


def _host_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None
