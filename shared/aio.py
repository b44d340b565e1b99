"""Asyncio helpers the backend and the host service share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


async def to_thread_to_its_end(func: Callable[..., _T], /, *args: Any) -> _T:
    """``func(*args)`` in a worker thread, awaited to its end even when the awaiting task is cancelled
    meanwhile, once or again (the cancel is raised after it): what the thread works on (a temp folder, a
    child process it starts) is still there when it ends, and work it began is not cut in two."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise
