"""Children forked from the warm fork server stay isolated: SIGKILL of one training's process ends
that training alone, and the next training gets a fresh process, forked and warmed up before it
started, that completes. The launcher's ``close()`` ends its idle worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from host_service.adapters.worker_process import ForkServerWorkerLauncher, ProcessWorker
from host_service.domain.ports import WorkerMessage, WorkerSpec
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from tests.e2e.host_cluster import running

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STRATEGY = (REPO / "shared/trainkit/workloads/strategy/samples/trend_momentum.yaml").read_text()


def _spec(tmp_path: Path, session_id: str, epochs: int) -> WorkerSpec:
    request = {
        "strategy_name": "trend_momentum",
        "strategy_yaml": STRATEGY,
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "overrides": {"seed": 1, "epochs": epochs, "early_stopping_patience": 0},
    }
    return WorkerSpec(session_id, request, tmp_path / "data", tmp_path / session_id, 1.0)


def _idle_pid(launcher: ForkServerWorkerLauncher) -> int:
    deadline = time.monotonic() + 120
    while (pid := launcher.idle_pid) is None:
        assert time.monotonic() < deadline, "no idle worker was forked"
        time.sleep(0.05)
    return pid


def _wait_for(
    worker: ProcessWorker, done: Callable[[list[WorkerMessage]], bool], seen: list[WorkerMessage]
) -> None:
    deadline = time.monotonic() + 120
    while not done(seen):
        assert time.monotonic() < deadline, [m.kind for m in seen]
        seen.extend(worker.drain())
        time.sleep(0.05)


def test_killed_training_fails_alone_and_the_next_one_runs_in_a_fresh_process(tmp_path: Path) -> None:
    write_sample_data(tmp_path / "data", symbols=("EURUSD",), timeframes=("1h",), rows=1500)
    launcher = ForkServerWorkerLauncher()
    launcher.warm_up()

    first_idle = _idle_pid(launcher)
    doomed = launcher.launch(_spec(tmp_path, "s_doomed", epochs=5000))
    assert doomed.pid == first_idle
    first: list[WorkerMessage] = []
    _wait_for(doomed, lambda seen: any(m.kind == "progress" for m in seen), first)
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while doomed.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert doomed.exitcode == -signal.SIGKILL

    launcher.prepare_next()  # as its session does once it reported progress
    warm = _idle_pid(launcher)  # forked while the doomed one trained
    assert warm != doomed.pid
    survivor = launcher.launch(_spec(tmp_path, "s_next", epochs=2))
    assert survivor.pid == warm
    second: list[WorkerMessage] = []
    _wait_for(
        survivor, lambda seen: any(m.kind in {"completed", "failed", "cancelled"} for m in seen), second
    )
    assert survivor.pid != doomed.pid
    assert [m.kind for m in second if m.kind in {"completed", "failed", "cancelled"}] == ["completed"]
    assert (tmp_path / "s_next").is_dir()
    deadline = time.monotonic() + 30
    while survivor.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert survivor.exitcode == 0
    assert launcher.idle_pid is None  # none forked until a session asks for it
    launcher.prepare_next()
    idle = _idle_pid(launcher)
    launcher.close()
    assert not running(idle)
    assert launcher.idle_pid is None


@pytest.mark.anyio
async def test_a_waiting_session_wakes_on_its_childs_message_and_on_its_exit(tmp_path: Path) -> None:
    """``wait`` sleeps an hour at most; each deadline below passes only if a message or the exit woke it."""
    write_sample_data(tmp_path / "data", symbols=("EURUSD",), timeframes=("1h",), rows=1500)
    launcher = ForkServerWorkerLauncher()
    worker = launcher.launch(_spec(tmp_path, "s_waited", epochs=5000))
    received: list[WorkerMessage] = []
    while not received:
        await asyncio.wait_for(worker.wait(3600), 120)
        received += worker.drain()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    while worker.is_alive():
        await asyncio.wait_for(worker.wait(3600), 30)
        worker.drain()
    assert worker.exitcode == -signal.SIGKILL
    launcher.close()
