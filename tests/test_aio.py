"""``to_thread_to_its_end``: the thread's work ends before the cancel of its awaiting task goes on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.aio import to_thread_to_its_end

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_task_cancelled_twice_waits_for_its_thread_then_is_cancelled() -> None:
    started, go, ended = threading.Event(), threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        assert go.wait(30)
        ended.set()
        return "done"

    task = asyncio.create_task(to_thread_to_its_end(work))
    assert await asyncio.to_thread(started.wait, 30)
    task.cancel()
    await asyncio.sleep(0.02)
    task.cancel()  # again, while it waits for the thread
    await asyncio.sleep(0.02)
    assert not task.done()  # still waiting: the thread has not ended
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended.is_set()


async def test_an_uncancelled_call_returns_the_result_and_raises_the_error() -> None:
    assert await to_thread_to_its_end(lambda x: x * 2, 21) == 42

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await to_thread_to_its_end(fail)
