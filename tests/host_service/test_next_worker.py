"""A session readies the next session's worker once its own training is under way, not at its launch:
at the child's first progress report from within its fit (naming an epoch), after
``prepare_next_after_s`` of a child that names none, or at its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from host_service.domain.ports import WorkerSpec
from host_service.domain.sessions import SessionStatus
from host_service.services.datasets import DatasetCache
from host_service.services.supervision import RunnerTimings, SessionRunner
from tests.host_service.fakes import FakeBackendClient, FakeLauncher, new_session

pytestmark = pytest.mark.anyio


def _runner(tmp_path: Path, launcher: FakeLauncher, prepare_next_after_s: float) -> SessionRunner:
    session = new_session()
    return SessionRunner(
        session,
        WorkerSpec(session.session_id, session.request, tmp_path / "data", tmp_path / "result", 1.0),
        datasets=DatasetCache(tmp_path / "cache", FakeBackendClient()),
        launcher=launcher,
        persist=lambda _: None,
        clock=lambda: datetime.now(UTC),
        timings=RunnerTimings(poll_interval_s=0.01, prepare_next_after_s=prepare_next_after_s),
    )


async def _until(condition: Callable[[], object], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within 5 s: {what}"
        await asyncio.sleep(0.01)


async def _launched(runner: SessionRunner) -> asyncio.Task[None]:
    task = asyncio.create_task(runner.run())
    await _until(lambda: runner.session.status is SessionStatus.RUNNING, "the child launched")
    return task


async def test_the_next_worker_is_readied_once_the_fit_reports_not_at_the_launch(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    runner = _runner(tmp_path, launcher, prepare_next_after_s=60)
    task = await _launched(runner)
    worker = launcher.workers[0]
    worker.send("progress", percentage=10.0, phase="indicators", message="Computing indicators")
    await asyncio.sleep(0.1)  # ten of the runner's polls: it had its chance to ready one too early
    assert launcher.prepared == []
    worker.send("progress", percentage=20.0, phase="training", message="Started", epoch=1, total_epochs=2)
    await _until(lambda: launcher.prepared, "the next worker readied")
    worker.send("progress", percentage=40.0, phase="training", message="Epoch 1/2", epoch=1, total_epochs=2)
    worker.complete()
    async with asyncio.timeout(5):
        await task
    assert runner.session.status is SessionStatus.COMPLETED
    assert launcher.prepared == [1]  # once, while the first session trained


async def test_a_session_that_ends_before_any_progress_readies_it_at_its_end(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    runner = _runner(tmp_path, launcher, prepare_next_after_s=60)
    task = await _launched(runner)
    await asyncio.sleep(0.05)
    assert launcher.prepared == []
    launcher.workers[0].exit(-9)
    async with asyncio.timeout(5):
        await task
    assert runner.session.status is SessionStatus.FAILED
    assert launcher.prepared == [1]


async def test_a_silent_child_counts_as_under_way_after_prepare_next_after_s(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    runner = _runner(tmp_path, launcher, prepare_next_after_s=0.3)
    started = asyncio.get_running_loop().time()
    task = await _launched(runner)
    await _until(lambda: launcher.prepared, "the next worker readied")
    # At least the interval after the launch (which came after ``started``), less the clock's slack.
    assert asyncio.get_running_loop().time() - started >= 0.29
    assert launcher.prepared == [1]
    launcher.workers[0].complete()
    async with asyncio.timeout(5):
        await task
    assert runner.session.status is SessionStatus.COMPLETED
    assert launcher.prepared == [1]
