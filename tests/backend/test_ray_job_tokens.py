"""A Ray job's token opens its operation's routes only while the operation runs as that job: once a
re-submission took over (the first job was thought lost, but it still runs somewhere), the earlier job's
progress, failure and model upload are refused (401) and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from backend.components import Components
from backend.domain.operations import OperationStatus, transition
from tests.backend.conftest import Fakes, start_app

pytestmark = pytest.mark.anyio

REQUEST = {"workload": "strategy", "strategy_yaml": "name: t\n", "symbols": ["EURUSD"], "timeframes": ["1h"]}
PROGRESS = {"progress": {"percentage": 50.0, "phase": "training", "message": "from a job"}}


@pytest.fixture
async def app(settings: Any, fakes: Fakes) -> AsyncIterator[tuple[httpx.AsyncClient, Components]]:
    app, lifespan = await start_app(settings, fakes)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client, app.state.components
    finally:
        await lifespan.__aexit__(None, None, None)


def ray_op(components: Components, submission: str) -> str:
    """A ray-mode operation, running as Ray job ``submission`` (``{op}`` stands for its id)."""
    ops = components.operations
    op, _ = ops.create(op_type="training", request=REQUEST, execution_mode="ray", mode_reason="test")
    ops.update(
        op.id,
        lambda cur: transition(cur, OperationStatus.RUNNING, ops.now()).with_changes(
            host_url="http://ray:8265", host_session_id=submission.replace("{op}", op.id)
        ),
    )
    return op.id


def token(components: Components, submission: str) -> dict[str, str]:
    minted = components.job_tokens.mint(submission, components.operations.now() + timedelta(hours=1))
    return {"authorization": f"Bearer {minted}"}


async def test_an_earlier_attempts_job_is_refused_once_its_operation_runs_as_a_later_one(
    app: tuple[httpx.AsyncClient, Components],
) -> None:
    client, components = app
    op_id = ray_op(components, "{op}-attempt-2")
    base = f"/api/v1/ray/jobs/{op_id}"
    first = token(components, op_id)  # the first attempt's job, thought lost
    checkpoints = f"/api/v1/callbacks/checkpoints/{op_id}"
    for method, path, kwargs in [
        ("POST", f"{base}/progress", {"json": PROGRESS}),
        ("POST", f"{base}/failure", {"json": {"code": "training_error", "message": "the old job failed"}}),
        ("PUT", f"{base}/model", {"content": b"x", "headers": {"x-content-sha256": "0" * 64}}),
        ("POST", f"{base}/result", {"json": {}}),
        ("GET", f"{base}/spec", {}),
        ("GET", f"{base}/data/EURUSD_1h.csv", {}),
        ("GET", checkpoints, {}),
        (
            "PUT",
            f"{checkpoints}?session_id={op_id}-attempt-2&epoch=1&sha256={'0' * 64}&size=1",
            {"content": b"x"},
        ),
    ]:
        refused = await client.request(method, path, headers={**first, **kwargs.pop("headers", {})}, **kwargs)
        assert refused.status_code == 401, (path, refused.text)
        error = refused.json()["error"]
        assert error["details"]["reason"] == "superseded"
        assert f"runs as job {op_id}-attempt-2" in error["message"]
    op = components.operations.get(op_id)
    assert op.status is OperationStatus.RUNNING  # the old job's failure changed nothing
    assert op.progress is None or op.progress.message != "from a job"
    assert not (components.settings.runs_dir / "ray-uploads" / f"{op_id}.model").exists()

    current = token(components, f"{op_id}-attempt-2")
    accepted = await client.post(f"{base}/progress", json=PROGRESS, headers=current)
    assert accepted.status_code == 200, accepted.text
