from __future__ import annotations

import threading

import httpx
import pytest

from tests.backend.conftest import Fakes, training_body, wait_for_status

pytestmark = pytest.mark.anyio


async def test_post_training_is_accepted_and_runs_to_completed_with_model_and_test_metrics(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/api/v1/trainings", json=training_body())
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "pending"
    assert accepted["execution_mode"] == "local"
    assert accepted["link"] == f"/api/v1/operations/{accepted['operation_id']}"
    assert response.headers["location"] == accepted["link"]

    done = await wait_for_status(api, accepted["operation_id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["progress"]["percentage"] == 100.0
    assert done["result"]["model"]["strategy"] == "trend"
    assert done["result"]["test_metrics"] == {"accuracy": 0.5}
    assert done["device"] == "cpu"
    assert done["started_at"] is not None
    assert done["completed_at"] is not None


async def test_same_idempotency_key_returns_the_same_operation(api: httpx.AsyncClient, fakes: Fakes) -> None:
    first = await api.post("/api/v1/trainings", json=training_body(idempotency_key="k-1"))
    second = await api.post("/api/v1/trainings", json=training_body(idempotency_key="k-1"))
    assert first.status_code == second.status_code == 202
    assert second.json()["operation_id"] == first.json()["operation_id"]
    assert second.headers["idempotent-replayed"] == "true"
    await wait_for_status(api, first.json()["operation_id"], {"completed"})
    assert len(fakes.engine.runs) == 1


async def test_inline_strategy_yaml_and_symbol_lists_are_accepted(api: httpx.AsyncClient) -> None:
    body = training_body(
        strategy=None, strategy_yaml="name: inline_one\n", symbol=["EURUSD"], timeframe=["1h"]
    )
    response = await api.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    op = await api.get(response.json()["link"])
    assert op.status_code == 200


async def test_executor_warnings_are_reported_on_the_operation(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(overrides={"epochs": 7}))
    assert response.json()["warnings"] == ["fake warning"]


async def test_with_concurrency_one_the_second_waits_pending_in_fifo_order(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    fakes.engine.gate = threading.Event()
    first = (await api.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
    second = (await api.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
    third = (await api.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
    await wait_for_status(api, first, {"running"})
    waiting = (await api.get(f"/api/v1/operations/{second}")).json()
    assert waiting["status"] == "pending"
    assert waiting["queue_position"] == 1
    assert (await api.get(f"/api/v1/operations/{third}")).json()["queue_position"] == 2
    fakes.engine.gate.set()
    for op_id in (first, second, third):
        await wait_for_status(api, op_id, {"completed"})
    assert fakes.engine.runs == [first, second, third]


async def test_a_training_that_raises_a_trainkit_error_fails_with_its_code(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    from shared.trainkit.errors import TrainingDivergedError

    fakes.engine.fail_with = TrainingDivergedError("loss became NaN at epoch 2", epoch=2)
    op_id = (await api.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
    failed = await wait_for_status(api, op_id, {"failed"})
    assert failed["error"]["code"] == "training_diverged"
    assert failed["error"]["details"] == {"epoch": 2}


async def test_an_unexpected_crash_fails_the_operation_without_a_traceback(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    fakes.engine.fail_with = ZeroDivisionError("boom")
    op_id = (await api.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
    failed = await wait_for_status(api, op_id, {"failed"})
    assert failed["error"] == {"code": "internal_error", "message": "ZeroDivisionError: boom", "details": {}}


async def test_the_same_idempotency_key_with_another_body_is_a_409(api: httpx.AsyncClient) -> None:
    first = await api.post("/api/v1/trainings", json=training_body(idempotency_key="k-2"))
    other = await api.post("/api/v1/trainings", json=training_body(idempotency_key="k-2", symbol="BTCUSD"))
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert first.json()["operation_id"] in error["message"]
    await wait_for_status(api, first.json()["operation_id"], {"completed"})


async def test_repeated_symbols_count_once_and_too_many_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(symbol=["EURUSD", "EURUSD"]))
    assert response.status_code == 202, response.text
    op_id = response.json()["operation_id"]
    assert (await api.get(f"/api/v1/operations/{op_id}/request")).json()["symbols"] == ["EURUSD"]
    many = await api.post("/api/v1/trainings", json=training_body(symbol=[f"S{i}" for i in range(21)]))
    assert many.status_code == 422
    assert many.json()["error"]["details"]["field"] == "symbol"
    await wait_for_status(api, op_id, {"completed"})


async def test_a_timeframe_with_an_underscore_cannot_be_trained_on(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(timeframe="1_h"))
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "timeframe"
