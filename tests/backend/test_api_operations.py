from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.backend.conftest import Fakes, training_body, wait_for_status

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
