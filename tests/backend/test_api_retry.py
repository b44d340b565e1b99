"""POST /api/v1/operations/{id}/retry: a failed, cancelled or interrupted operation runs again as a new
attempt (from its checkpoint unless told otherwise); anything else is refused with what to do."""

from __future__ import annotations

import threading

import httpx
import pytest

from shared.trainkit.errors import CheckpointError
from tests.backend.conftest import Fakes, training_body, wait_for_status

pytestmark = pytest.mark.anyio


async def start(api: httpx.AsyncClient) -> str:
    response = await api.post("/api/v1/trainings", json=training_body())
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


async def cancelled_training(api: httpx.AsyncClient, fakes: Fakes) -> str:
    fakes.engine.gate = threading.Event()
    fakes.engine.batches_per_epoch = 100_000
    op_id = await start(api)
    await wait_for_status(api, op_id, {"running"})
    assert fakes.engine.started.wait(5)
    fakes.engine.gate.set()
    await api.post(f"/api/v1/operations/{op_id}/cancel")
    await wait_for_status(api, op_id, {"cancelled"})
    fakes.engine.gate, fakes.engine.batches_per_epoch = None, 3
    return op_id


async def test_retry_of_a_cancelled_training_resumes_it_as_a_second_attempt(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    op_id = await cancelled_training(api, fakes)

    response = await api.post(f"/api/v1/operations/{op_id}/retry")

    assert response.status_code == 202, response.text
    assert response.json()["status"] in {"pending", "running", "completed"}
    done = await wait_for_status(api, op_id, {"completed", "failed", "cancelled"})
    assert done["status"] == "completed"
    assert done["error"] is None
    assert fakes.engine.runs == [op_id, op_id]
    assert fakes.engine.resumed == [False, True]
    first, second = done["attempt_history"]
    assert (first["number"], first["outcome"], first["trigger"]) == (1, "cancelled", None)
    assert (second["number"], second["outcome"], second["trigger"]) == (2, "completed", "manual")
    assert second["from_checkpoint"] is True
    assert second["where"].startswith("local backend ")
    logs = (await api.get(f"/api/v1/operations/{op_id}/logs")).json()["lines"]
    assert any("retry requested, attempt 2 from its last checkpoint" in line["message"] for line in logs)


async def test_retry_from_scratch_of_a_failed_training(api: httpx.AsyncClient, fakes: Fakes) -> None:
    fakes.engine.fail_with = CheckpointError("the data went away")
    op_id = await start(api)
    failed = await wait_for_status(api, op_id, {"failed"})
    assert failed["attempt_history"][0]["error"]["message"] == "the data went away"
    fakes.engine.fail_with = None

    response = await api.post(f"/api/v1/operations/{op_id}/retry", json={"from_checkpoint": False})

    assert response.status_code == 202, response.text
    done = await wait_for_status(api, op_id, {"completed", "failed"})
    assert done["status"] == "completed"
    assert fakes.engine.resumed == [False, False]
    assert [a["outcome"] for a in done["attempt_history"]] == ["failed", "completed"]


async def test_retry_of_a_completed_or_running_operation_is_a_409(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    done = await start(api)
    await wait_for_status(api, done, {"completed"})
    fakes.engine.gate = threading.Event()
    running = await start(api)
    await wait_for_status(api, running, {"running"})
    try:
        for op_id, why in ((done, "it is completed"), (running, "it is still running")):
            response = await api.post(f"/api/v1/operations/{op_id}/retry")
            assert response.status_code == 409
            error = response.json()["error"]
            assert error["code"] == "illegal_transition"
            assert why in error["message"]
            assert "only failed, cancelled or interrupted" in error["message"]
    finally:
        fakes.engine.gate.set()
    await wait_for_status(api, running, {"completed"})


async def test_retry_of_an_unknown_operation_is_a_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/operations/op_nope/retry")
    assert response.status_code == 404
    assert "no operation with id" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"from_checkpoint": "perhaps"}, "from_checkpoint"), ({"from_scratch": True}, "from_scratch")],
)
async def test_a_bad_retry_body_is_a_422_naming_the_field(
    api: httpx.AsyncClient, fakes: Fakes, body: dict[str, object], field: str
) -> None:
    op_id = await cancelled_training(api, fakes)
    response = await api.post(f"/api/v1/operations/{op_id}/retry", json=body)
    assert response.status_code == 422
    assert field in response.text
    assert (await api.get(f"/api/v1/operations/{op_id}")).json()["status"] == "cancelled"


async def test_max_retries_of_a_request_is_kept_and_bounded(api: httpx.AsyncClient) -> None:
    accepted = await api.post("/api/v1/trainings", json=training_body(max_retries=0))
    assert accepted.status_code == 202, accepted.text
    op = (await api.get(f"/api/v1/operations/{accepted.json()['operation_id']}")).json()
    assert op["max_retries"] == 0

    refused = await api.post("/api/v1/trainings", json=training_body(max_retries=11))
    assert refused.status_code == 422
    assert "max_retries" in refused.text
