"""session.json written behind the event loop: in order, the latest state winning, atomic and durable."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from host_service.adapters.session_store import SESSION_FILE, DiskSessionStore
from host_service.adapters.session_writer import SessionWriter
from host_service.domain.sessions import SessionStatus
from tests.host_service.conftest import FakeBackend, host_settings, run_host, start_body
from tests.host_service.fakes import FakeLauncher, new_session

DEADLINE_S = 10.0


class GatedStore:
    """Records each write (session id, status, thread); the first write waits until ``release``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.writes: list[tuple[str, str, str]] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self._fail_on = fail_on

    def write_record(self, session_id: str, record: dict[str, Any]) -> None:
        self.started.set()
        assert self.gate.wait(DEADLINE_S)
        if record["status"] == self._fail_on:
            raise OSError(28, "No space left on device")
        self.writes.append((session_id, record["status"], threading.current_thread().name))


def test_save_returns_before_the_write_and_the_latest_state_of_each_session_wins_in_order() -> None:
    store = GatedStore()
    writer = SessionWriter(store)
    a, b = new_session("a"), new_session("b")
    first = writer.save(a)  # the writer takes it and waits at the gate: save did not wait
    assert store.started.wait(DEADLINE_S)
    a.status = SessionStatus.RUNNING
    overtaken = writer.save(a)
    writer.save(b)
    a.status = SessionStatus.COMPLETED
    last = writer.save(a)
    assert store.writes == []
    assert not first.done()
    store.gate.set()
    assert writer.flush(DEADLINE_S)
    # a's running state was replaced while it waited; b, queued before a's newest state, went first.
    assert [(s, status) for s, status, _ in store.writes] == [
        ("a", "starting"),
        ("b", "starting"),
        ("a", "completed"),
    ]
    assert {thread for _, _, thread in store.writes} == {"session-writer"}
    assert [future.result(0) for future in (first, overtaken, last)] == [None, None, None]
    writer.close()


def test_a_failed_write_reaches_its_future_and_the_next_state_is_still_written() -> None:
    store = GatedStore(fail_on="running")
    store.gate.set()
    writer = SessionWriter(store)
    session = new_session("a")
    session.status = SessionStatus.RUNNING
    failed = writer.save(session)
    with pytest.raises(OSError, match="No space left"):
        failed.result(DEADLINE_S)
    session.status = SessionStatus.COMPLETED
    writer.save(session).result(DEADLINE_S)
    assert store.writes[-1][:2] == ("a", "completed")
    writer.close()


def test_on_disk_every_state_replaces_the_file_whole_and_close_writes_what_is_queued(tmp_path: Path) -> None:
    store = DiskSessionStore(tmp_path)
    writer = SessionWriter(store)
    session = new_session("a")
    for epoch in range(50):
        session.progress = {"epoch": epoch}
        writer.save(session)
    writer.close()
    folder = store.session_dir("a")
    assert json.loads((folder / SESSION_FILE).read_text())["progress"] == {"epoch": 49}
    assert [p.name for p in folder.iterdir()] == [SESSION_FILE]  # no temp file left behind
    with pytest.raises(RuntimeError, match="closed"):
        writer.save(session)


@pytest.mark.anyio
async def test_a_start_whose_session_cannot_be_written_is_refused_and_leaves_no_training(
    tmp_path: Path,
) -> None:
    settings = host_settings(tmp_path)
    # A directory where the first session's record goes: its atomic replace fails, as on a broken disk.
    (settings.work_dir / "sessions" / "hs_unwritable" / SESSION_FILE).mkdir(parents=True)
    ids = iter(["hs_unwritable", "hs_ok"])
    launcher = FakeLauncher()
    async for host in run_host(
        settings, launcher, FakeBackend(), new_id=lambda: next(ids), raise_app_exceptions=False
    ):
        refused = await host.client.post("/training/start", json=start_body())
        assert refused.status_code == 500
        assert all(not worker.is_alive() for worker in launcher.workers)  # a launched child is reaped
        assert (await host.client.get("/training/status/hs_unwritable")).status_code == 404
        assert (await host.client.get("/health")).json()["sessions_in_use"] == 0
        started = await host.client.post("/training/start", json=start_body())
        assert started.status_code == 202
        assert started.json()["session_id"] == "hs_ok"


def test_a_cancelled_waiter_does_not_stop_the_writer() -> None:
    """A start or acknowledge whose await is cancelled (a shutdown, a dropped request) cancels its future;
    the writer still writes that state and goes on writing the next ones."""
    store = GatedStore()
    writer = SessionWriter(store)
    a = new_session("a")
    writer.save(a)
    assert store.started.wait(DEADLINE_S)
    a.status = SessionStatus.RUNNING
    abandoned = writer.save(a)
    assert abandoned.cancel()
    store.gate.set()
    assert writer.flush(DEADLINE_S)
    a.status = SessionStatus.COMPLETED
    assert writer.save(a).result(DEADLINE_S) is None
    assert [status for _, status, _ in store.writes] == ["starting", "running", "completed"]
    writer.close()
