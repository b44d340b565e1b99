from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.settings import Settings
from shared.contracts.training import ProgressUpdate, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor.types import ProgressCallback, TrainingResult
from tests.backend.conftest import Fakes, start_app, training_body, wait_for_status
from tests.backend.fakes import FakeEngine

pytestmark = pytest.mark.anyio


async def start(api: httpx.AsyncClient, **changes: object) -> str:
    response = await api.post("/api/v1/trainings", json=training_body(**changes))
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


async def test_cancel_while_pending_cancels_at_once_and_it_never_runs(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    fakes.engine.gate = threading.Event()
    running = await start(api)
    pending = await start(api)
    await wait_for_status(api, running, {"running"})
    response = await api.post(f"/api/v1/operations/{pending}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    fakes.engine.gate.set()
    await wait_for_status(api, running, {"completed"})
    assert fakes.engine.runs == [running]


async def test_cancel_while_running_stops_the_training(api: httpx.AsyncClient, fakes: Fakes) -> None:
    fakes.engine.gate = threading.Event()
    fakes.engine.batches_per_epoch = 100_000
    op_id = await start(api)
    await wait_for_status(api, op_id, {"running"})
    assert fakes.engine.started.wait(5)
    fakes.engine.gate.set()
    response = await api.post(f"/api/v1/operations/{op_id}/cancel")
    assert response.json()["status"] in {"cancelling", "cancelled"}
    done = await wait_for_status(api, op_id, {"cancelled", "completed", "failed"})
    assert done["status"] == "cancelled"
    assert done["completed_at"] is not None


async def test_cancel_of_finished_operation_is_rejected_with_409(api: httpx.AsyncClient) -> None:
    op_id = await start(api)
    await wait_for_status(api, op_id, {"completed"})
    for method in ("POST", "DELETE"):
        path = f"/api/v1/operations/{op_id}" + ("/cancel" if method == "POST" else "")
        response = await api.request(method, path)
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "illegal_transition"
        assert "already completed" in error["message"]


async def test_list_is_newest_first_and_filters_by_status_and_type(api: httpx.AsyncClient) -> None:
    ids = [await start(api) for _ in range(3)]
    for op_id in ids:
        await wait_for_status(api, op_id, {"completed"})
    listed = (await api.get("/api/v1/operations", params={"limit": 2})).json()
    assert [item["operation_id"] for item in listed["items"]] == [ids[2], ids[1]]
    assert listed["total"] == 3
    page2 = (await api.get("/api/v1/operations", params={"limit": 2, "offset": 2})).json()
    assert [item["operation_id"] for item in page2["items"]] == [ids[0]]
    assert (await api.get("/api/v1/operations", params={"status": "failed"})).json()["total"] == 0
    assert (await api.get("/api/v1/operations", params={"status": "completed", "type": "training"})).json()[
        "total"
    ] == 3
    assert (await api.get("/api/v1/operations", params={"type": "other"})).json()["total"] == 0


async def test_metrics_returns_the_epoch_history_with_best_epoch(api: httpx.AsyncClient) -> None:
    op_id = await start(api, overrides={"epochs": 4})
    await wait_for_status(api, op_id, {"completed"})
    metrics = (await api.get(f"/api/v1/operations/{op_id}/metrics")).json()
    assert [row["epoch"] for row in metrics["history"]] == [0, 1, 2, 3]
    assert metrics["best_epoch"] == 3
    assert metrics["best_val_loss"] == pytest.approx(0.3)
    assert metrics["plateau"] is False
    assert metrics["overfitting"] is False


@dataclass
class _TimedEngine(FakeEngine):
    """A FakeEngine whose results carry timer rollups, as the executor's do."""

    telemetry: dict[str, Any] = field(default_factory=dict)

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
        resume: bool = False,
    ) -> TrainingResult:
        result = super().execute(request, progress, cancel, run_name=run_name, resume=resume)
        return dataclasses.replace(result, telemetry=self.telemetry)


async def test_metrics_carry_the_timer_rollups_of_the_result_and_leave_malformed_ones_out(
    settings: Settings, fakes: Fakes
) -> None:
    epoch = {
        "count": 3,
        "total_s": 1.5,
        "mean_s": 0.5,
        "p50_s": 0.5,
        "p95_s": 0.6,
        "max_s": 0.6,
        "dropped": 0,
    }
    fakes.engine = _TimedEngine(
        telemetry={"epoch": epoch, "spawn": {"count": 1, "total_s": "slow", "ok": True}, "broken": 7}
    )
    app, lifespan = await start_app(settings, fakes)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            op_id = await start(client)
            await wait_for_status(client, op_id, {"completed"})
            metrics = (await client.get(f"/api/v1/operations/{op_id}/metrics")).json()
    finally:
        await lifespan.__aexit__(None, None, None)
    assert metrics["telemetry"] == {"epoch": epoch, "spawn": {"count": 1}}


async def test_metrics_of_a_result_without_telemetry_have_none(api: httpx.AsyncClient) -> None:
    op_id = await start(api)
    await wait_for_status(api, op_id, {"completed"})
    assert (await api.get(f"/api/v1/operations/{op_id}/metrics")).json()["telemetry"] == {}


async def test_logs_hold_what_the_training_logged_and_nothing_from_elsewhere(api: httpx.AsyncClient) -> None:
    import logging

    op_id = await start(api)
    await wait_for_status(api, op_id, {"completed"})
    logging.getLogger("shared.trainkit.elsewhere").warning("not part of any operation")
    logs = (await api.get(f"/api/v1/operations/{op_id}/logs")).json()
    messages = [line["message"] for line in logs["lines"]]
    assert "fake training of trend started" in messages
    assert "fake training finished" in messages
    assert "not part of any operation" not in messages
    page = (await api.get(f"/api/v1/operations/{op_id}/logs", params={"offset": 1, "limit": 1})).json()
    assert len(page["lines"]) == 1
    assert page["next_offset"] == 2


async def test_events_stream_state_first_then_progress_until_the_end(api: httpx.AsyncClient) -> None:
    op_id = await start(api, overrides={"epochs": 3})
    events: list[tuple[str, dict[str, object]]] = []
    async with api.stream("GET", f"/api/v1/operations/{op_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: ") :])))
    assert events[0][0] == "state"
    assert events[-1][1]["status"] == "completed"
    percentages = [float(str(data["progress"]["percentage"])) for _, data in events]  # type: ignore[index]
    assert percentages == sorted(percentages)


async def test_events_of_a_finished_operation_send_its_state_and_end(api: httpx.AsyncClient) -> None:
    op_id = await start(api)
    await wait_for_status(api, op_id, {"completed"})
    response = await api.get(f"/api/v1/operations/{op_id}/events")
    assert response.text.count("event: ") == 1
    assert "event: state" in response.text
    assert '"status":"completed"' in response.text


async def test_idle_event_stream_sends_heartbeats(api: httpx.AsyncClient, fakes: Fakes) -> None:
    # ASGITransport hands the body over only when the stream ends, so the gate opens on a timer:
    # the stream sits idle for several heartbeat intervals (0.2 s) first.
    fakes.engine.gate = threading.Event()
    op_id = await start(api)
    opener = threading.Timer(1.0, fakes.engine.gate.set)
    opener.start()
    try:
        response = await api.get(f"/api/v1/operations/{op_id}/events")
    finally:
        opener.cancel()
    assert ": heartbeat" in response.text.splitlines()
    assert '"status":"completed"' in response.text


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events, kind = [], ""
    for line in text.splitlines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((kind, json.loads(line[len("data: ") :])))
    return events


async def _until(condition: Callable[[], bool], deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never became true"
        await asyncio.sleep(0.01)


async def subscribed(app_components: Any, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while app_components.broker.subscriber_count < count:
        assert time.monotonic() < deadline, "the event stream never subscribed"
        await asyncio.sleep(0.01)


async def test_a_second_cancel_while_cancelling_is_a_no_op_202(api: httpx.AsyncClient, fakes: Fakes) -> None:
    fakes.engine.gate = threading.Event()
    op_id = await start(api)
    await wait_for_status(api, op_id, {"running"})
    first = await api.post(f"/api/v1/operations/{op_id}/cancel")
    second = await api.post(f"/api/v1/operations/{op_id}/cancel")
    assert (first.status_code, first.json()["status"]) == (202, "cancelling")
    assert (second.status_code, second.json()["status"]) == (202, "cancelling")
    fakes.engine.gate.set()
    done = await wait_for_status(api, op_id, {"cancelled", "completed", "failed"})
    assert (done["status"], done["progress"]["phase"]) == ("cancelled", "cancelled")


async def test_device_reported_at_training_start_shows_while_running_and_after_a_failure(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    from shared.trainkit.errors import DataError

    fakes.engine.gate = threading.Event()
    fakes.engine.device = "cuda:0"
    fakes.engine.fail_with = DataError("bad rows", file="x.csv")
    op_id = await start(api)
    assert fakes.engine.started.wait(5)
    running = (await api.get(f"/api/v1/operations/{op_id}")).json()
    assert (running["status"], running["device"]) == ("running", "cuda:0")
    fakes.engine.gate.set()
    failed = await wait_for_status(api, op_id, {"failed"})
    assert (failed["device"], failed["progress"]["phase"]) == ("cuda:0", "failed")


async def test_a_failure_before_any_progress_takes_its_device_from_the_error(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    from shared.trainkit.errors import TrainkitError

    fakes.engine.device = ""  # the executor reported no device before it failed
    fakes.engine.fail_with = TrainkitError("out of memory", device="cuda:1")
    failed = await wait_for_status(api, await start(api), {"failed"})
    assert failed["device"] == "cuda:1"


async def test_a_torn_log_line_is_shown_as_unreadable_not_a_500(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    op_id = await start(api)
    await wait_for_status(api, op_id, {"completed"})
    with (settings.logs_dir / f"{op_id}.jsonl").open("a") as log:
        log.write('{"at": "2025-01-05T12:00:00+00:00", "lev')
    response = await api.get(f"/api/v1/operations/{op_id}/logs")
    assert response.status_code == 200, response.text
    last = response.json()["lines"][-1]
    assert last["level"] == "WARNING"
    assert last["message"].startswith("unreadable log line")


def test_a_line_appended_after_a_torn_one_stands_on_its_own(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from backend.adapters.operation_logs import FileOperationLogStore
    from backend.domain.ports import LogRecordLine

    line = LogRecordLine(0, datetime(2025, 1, 5, tzinfo=UTC), "INFO", "t", "hello")
    FileOperationLogStore(tmp_path).append("op_1", line)
    with (tmp_path / "op_1.jsonl").open("a") as log:
        log.write('{"at": "20')
    FileOperationLogStore(tmp_path).append("op_1", line)  # a new process after the crash
    lines, _ = FileOperationLogStore(tmp_path).read("op_1", 0, 10)
    assert [x.message for x in lines][0::2] == ["hello", "hello"]
    assert lines[1].message.startswith("unreadable log line 1")


async def test_offsets_beyond_any_database_integer_are_a_422(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/operations", params={"offset": "99999999999999999999"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "query.offset"


async def test_progress_events_are_coalesced_per_client_and_lifecycle_events_all_arrive(
    settings: Settings, fakes: Fakes
) -> None:
    settings.sse_min_interval_s = 60.0  # after the first, no progress event may pass before the end
    fakes.engine.gate = threading.Event()
    app, lifespan = await start_app(settings, fakes)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            op_id = await start(client)
            assert fakes.engine.started.wait(5)
            stream = asyncio.create_task(client.get(f"/api/v1/operations/{op_id}/events"))
            await subscribed(app.state.components)
            for step in range(200):
                update = ProgressUpdate(percentage=2 + step * 0.1, phase="training")
                app.state.components.operations.report_progress(op_id, update)
            fakes.engine.gate.set()
            events = sse_events((await asyncio.wait_for(stream, 20)).text)
    finally:
        await lifespan.__aexit__(None, None, None)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "state"
    assert kinds[-1] == "status"
    assert kinds.count("progress") <= 1, kinds
    assert events[-1][1]["status"] == "completed"


async def test_a_pending_stream_gets_its_new_queue_position_when_the_queue_moves(
    settings: Settings, fakes: Fakes
) -> None:
    fakes.engine.gate = threading.Event()
    app, lifespan = await start_app(settings, fakes)
    transport = httpx.ASGITransport(app=app)
    operations = app.state.components.operations
    reads: list[dict[str, int]] = []  # every queue-position read, in order: the stream's and nobody else's
    original = operations.queue_positions

    def counted() -> dict[str, int]:
        positions: dict[str, int] = original()
        reads.append(positions)
        return positions

    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            running, ahead, watched = [await start(client) for _ in range(3)]
            await wait_for_status(client, running, {"running"})
            operations.queue_positions = counted
            stream = asyncio.create_task(client.get(f"/api/v1/operations/{watched}/events"))
            await _until(lambda: len(reads) >= 1)  # the stream has read its first state: position 2
            assert (await client.post(f"/api/v1/operations/{ahead}/cancel")).status_code == 200
            await _until(lambda: len(reads) >= 2)  # ... and has seen the queue move
            operations.queue_positions = original
            await client.post(f"/api/v1/operations/{watched}/cancel")
            events = sse_events((await asyncio.wait_for(stream, 10)).text)
            fakes.engine.gate.set()
            await wait_for_status(client, running, {"completed"})
    finally:
        await lifespan.__aexit__(None, None, None)
    positions = [data["queue_position"] for kind, data in events if kind == "state"]
    assert positions == [2, 1]
    assert events[-1][1]["status"] == "cancelled"


async def test_event_streams_stay_out_of_the_http_latency_histogram(api: httpx.AsyncClient) -> None:
    op_id = await start(api)
    await wait_for_status(api, op_id, {"completed"})
    assert (await api.get(f"/api/v1/operations/{op_id}/events")).status_code == 200
    metrics = (await api.get("/metrics")).text
    assert 'route="/api/v1/operations/{operation_id}"' in metrics
    assert 'route="/api/v1/operations/{operation_id}/events"' not in metrics
