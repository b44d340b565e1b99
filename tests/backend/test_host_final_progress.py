"""A host training's last progress comes from how it ended, not from the last update the backend polled
(which can be epochs old): 100 % with the result's epochs and metrics, or where and why it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.contracts.host import SessionError, SessionStatusName
from shared.contracts.training import ProgressUpdate
from tests.backend.host_fakes import result_payload, tiny_model
from tests.backend.host_harness import HostBackend, host_backend, host_settings

pytestmark = pytest.mark.anyio

RESULT = {
    "device": "cpu",
    "history": [{"epoch": e, "val_loss": 1.0 / (e + 1)} for e in range(3)],
    "model": {},
    "epochs_trained": 3,
    "test_metrics": {"accuracy": 0.75, "macro_f1": 0.5, "confusion": [[1, 0], [0, 1]]},
}


async def _polled_at_epoch_one(backend: HostBackend) -> tuple[str, str]:
    op_id = await backend.start_training()
    body = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
    session_id: str = body["host_session_id"]
    backend.hosts.by_id[session_id].progress = ProgressUpdate(
        percentage=40.0, phase="training", message="epoch 1/3", epoch=1, total_epochs=3
    )
    await backend.wait_for(op_id, lambda b: b["progress"]["epoch"] == 1, "epoch 1 mirrored")
    return op_id, session_id


def _result(backend: HostBackend, op_id: str, session_id: str, tmp_path: Path) -> bytes:
    model, config = tiny_model()
    path = tmp_path / f"{session_id}.pt"
    path.write_bytes(model)
    return result_payload(op_id, session_id, path, config, result=RESULT)


def _assert_completed_from_result(progress: dict[str, Any]) -> None:
    assert progress["percentage"] == 100.0
    assert progress["phase"] == "completed"
    assert (progress["epoch"], progress["total_epochs"]) == (3, 3)
    assert progress["metrics"] == {"accuracy": 0.75, "macro_f1": 0.5}
    assert progress["message"] == "completed: accuracy=0.7500, macro_f1=0.5000"


async def test_a_result_callback_sets_the_final_progress_from_the_result(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, host_result_pull_delay_s=60)) as backend:
        op_id, session_id = await _polled_at_epoch_one(backend)
        response = await backend.post_result(_result(backend, op_id, session_id, tmp_path))
        assert response.status_code == 200, response.text
        op = await backend.operation(op_id)
        assert op["status"] == "completed"
        _assert_completed_from_result(op["progress"])
        stored = backend.components.operations.get(op_id)
        assert stored.progress.message.startswith("completed: ")  # persisted, not only live


async def test_a_pulled_result_sets_the_final_progress_from_the_result(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path, host_result_pull_delay_s=0.05)) as backend:
        op_id, session_id = await _polled_at_epoch_one(backend)
        backend.hosts.results[session_id] = _result(backend, op_id, session_id, tmp_path)
        backend.hosts.by_id[session_id].status = SessionStatusName.COMPLETED
        op = await backend.wait_status(op_id, "completed")
        _assert_completed_from_result(op["progress"])


async def test_a_failed_host_training_ends_in_phase_failed_saying_why(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, session_id = await _polled_at_epoch_one(backend)
        session = backend.hosts.by_id[session_id]
        session.error = SessionError(code="invalid_data", message="column close is empty")
        session.status = SessionStatusName.FAILED
        op = await backend.wait_status(op_id, "failed")
        assert op["progress"]["phase"] == "failed"
        assert op["progress"]["epoch"] == 1
        assert "column close is empty" in op["progress"]["message"]
        assert op["progress"]["message"].startswith("failed: ")


async def test_a_cancelled_host_training_ends_in_phase_cancelled_saying_where(tmp_path: Path) -> None:
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id, _ = await _polled_at_epoch_one(backend)
        await backend.client.post(f"/api/v1/operations/{op_id}/cancel")
        op = await backend.wait_status(op_id, "cancelled")
        assert op["progress"]["phase"] == "cancelled"
        assert op["progress"]["message"] == "cancelled at epoch 1/3"
