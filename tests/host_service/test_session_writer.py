"""session.json written behind the event loop: in order, the latest state winning, atomic and durable."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from host_service.adapters.backend_client import CallbackRetryPolicy
from host_service.adapters.session_store import SESSION_FILE, DiskSessionStore
from host_service.adapters.session_writer import SessionWriter
from host_service.domain.sessions import Session, SessionStatus
from host_service.main import create_app
from tests.host_service.conftest import SECRET, FakeBackend, host_settings, no_sleep, start_body
from tests.host_service.fakes import FakeLauncher, SigningAuth

NOW = datetime(2025, 1, 5, tzinfo=UTC)
DEADLINE_S = 10.0


def _session(session_id: str) -> Session:
    return Session(
        session_id=session_id,
        operation_id=f"op_{session_id}",
        fingerprint="f",
        callback_url="http://b/cb",
        request={},
        datasets=[],
        created_at=NOW,
        updated_at=NOW,
    )


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
    a, b = _session("a"), _session("b")
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
    session = _session("a")
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
    session = _session("a")
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
    launcher, backend = FakeLauncher(), FakeBackend()
    ids = iter(["hs_unwritable", "hs_ok"])
    app = create_app(
        settings,
        launcher=launcher,
        backend_transport=httpx.MockTransport(backend),
        retry_policy=CallbackRetryPolicy(attempts=2, sleep=no_sleep),
        device={"kind": "cpu", "name": "test-cpu", "memory_bytes": 1},
        new_id=lambda: next(ids),
    )
    # A directory where the first session's record goes: its atomic replace fails, as on a broken disk.
    (settings.work_dir / "sessions" / "hs_unwritable" / SESSION_FILE).mkdir(parents=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://host.test", auth=SigningAuth(SECRET), timeout=10
        ) as client:
            refused = await client.post("/training/start", json=start_body())
            assert refused.status_code == 500
            assert all(not worker.is_alive() for worker in launcher.workers)  # a launched child is reaped
            assert (await client.get("/training/status/hs_unwritable")).status_code == 404
            assert (await client.get("/health")).json()["sessions_in_use"] == 0
            started = await client.post("/training/start", json=start_body())
            assert started.status_code == 202
            assert started.json()["session_id"] == "hs_ok"
