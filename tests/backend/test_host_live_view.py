"""Live view parity for host trainings: every epoch the host reports reaches the operation's history
(not only the one a poll happens to see), and the host's own log lines reach its log, once each."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.host import HostLogLine
from shared.contracts.training import ProgressUpdate
from tests.backend.host_harness import HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio


async def history(
    backend: HostBackend, op_id: str, rows: int, deadline_s: float = 10.0
) -> list[dict[str, Any]]:
    end = time.monotonic() + deadline_s
    found: list[dict[str, Any]] = []
    while time.monotonic() < end:
        found = (await backend.client.get(f"/api/v1/operations/{op_id}/metrics")).json()["history"]
        if len(found) >= rows:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{rows} epochs not in the history within {deadline_s} s: {found}")


def epoch(n: int) -> dict[str, Any]:
    return {"epoch": n, "train_loss": 1.0 / n, "val_loss": 1.5 / n, "val_accuracy": 0.5 + n / 100}


async def _logs(
    backend: HostBackend, op_id: str, needle: str, deadline_s: float = 10.0
) -> list[dict[str, Any]]:
    end = time.monotonic() + deadline_s
    lines: list[dict[str, Any]] = []
    while time.monotonic() < end:
        lines = (await backend.client.get(f"/api/v1/operations/{op_id}/logs")).json()["lines"]
        if any(needle in line["message"] for line in lines):
            return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line with {needle!r} within {deadline_s} s: {lines}")


async def test_every_epoch_the_host_keeps_reaches_the_history_even_between_polls(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id = await backend.start_training()
        body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
        session = backend.hosts.by_id[body["host_session_id"]]
        # the latest report is a batch update (no epoch row): the epochs come from the host's list
        session.progress = ProgressUpdate(percentage=30.0, phase="training", epoch=3, total_epochs=10)
        session.recent_epochs = [epoch(n) for n in (1, 2, 3)]
        rows = await history(backend, op_id, 3)
        assert [row["epoch"] for row in rows] == [1, 2, 3]
        assert rows[2]["val_accuracy"] == pytest.approx(0.53)
        session.recent_epochs = [epoch(n) for n in (4, 5)]  # the host keeps only its last epochs
        session.progress = ProgressUpdate(percentage=50.0, phase="training", epoch=5, total_epochs=10)
        rows = await history(backend, op_id, 5)
        assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5]


async def test_the_hosts_log_lines_reach_the_operation_log_once_each_with_their_level(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id = await backend.start_training()
        body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
        session = backend.hosts.by_id[body["host_session_id"]]
        session.recent_logs = [
            HostLogLine(
                seq=1, level="INFO", logger="shared.trainkit.trainer", message="epoch 1/3 train_loss 0.9"
            ),
            HostLogLine(seq=2, level="WARNING", logger="shared.trainkit.trainer", message="gradient clipped"),
        ]
        await _logs(backend, op_id, "gradient clipped")
        session.recent_logs = [
            *session.recent_logs,
            HostLogLine(
                seq=3, level="INFO", logger="shared.trainkit.trainer", message="epoch 2/3 train_loss 0.5"
            ),
        ]
        lines = await _logs(backend, op_id, "epoch 2/3")
        host_lines = [
            (line["level"], line["message"]) for line in lines if line["message"].startswith("[host]")
        ]
        assert host_lines == [
            ("INFO", "[host] epoch 1/3 train_loss 0.9"),
            ("WARNING", "[host] gradient clipped"),
            ("INFO", "[host] epoch 2/3 train_loss 0.5"),
        ]
