"""Projects, experiment names and tags through the API: start, list with filters, per-project counts."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx
import pytest

from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app, training_body, wait_for_status

pytestmark = pytest.mark.anyio


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def start(api: httpx.AsyncClient, **changes: object) -> str:
    response = await api.post("/api/v1/trainings", json=training_body(**changes))
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


async def listed(api: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    response = await api.get("/api/v1/operations", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["operation_id"] for item in body["items"]], body["total"]


async def test_a_training_carries_its_project_name_and_tags_without_duplicates(
    api: httpx.AsyncClient,
) -> None:
    op_id = await start(api, project="fx-2025", name="baseline.v2", tags=["gpu", "baseline", "gpu"])
    done = await wait_for_status(api, op_id, {"completed"})
    assert (done["project"], done["name"], done["tags"], done["workload"]) == (
        "fx-2025",
        "baseline.v2",
        ["gpu", "baseline"],
        "strategy",
    )


async def test_a_training_without_a_project_is_in_default_with_no_name_or_tags(
    api: httpx.AsyncClient,
) -> None:
    op = (await api.get(f"/api/v1/operations/{await start(api)}")).json()
    assert (op["project"], op["name"], op["tags"]) == ("default", None, [])


async def test_the_experiment_name_travels_in_the_executors_request(settings: Settings, fakes: Fakes) -> None:
    app, lifespan = await start_app(settings, fakes)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            op_id = await start(client, name="run-7")
            await wait_for_status(client, op_id, {"completed"})
        assert app.state.components.operations.get(op_id).request["name"] == "run-7"
    finally:
        await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"project": "Not A Slug"}, "body.project"),
        ({"tags": ["ok", "Bad Tag"]}, "body.tags.1"),
        ({"tags": ["-leading-dash"]}, "body.tags.0"),
    ],
)
async def test_a_bad_project_or_tag_is_a_422_naming_the_field_and_what_is_allowed(
    api: httpx.AsyncClient, changes: dict[str, object], field: str
) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(**changes))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert "lower-case letters, digits, '-' or '_'" in error["message"]


async def test_more_than_twenty_tags_is_a_422_on_tags(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(tags=[f"t{i}" for i in range(21)]))
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "body.tags"


async def test_a_bad_experiment_name_is_a_422_saying_what_is_allowed(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/trainings", json=training_body(name="../escape"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"]["field"] == "body.name"
    assert "letters, digits, '.', '_', '+' or '-'" in error["message"]


async def test_the_list_filters_by_project_tags_and_workload_with_a_true_total(
    api: httpx.AsyncClient,
) -> None:
    fx_gpu = await start(api, project="fx", tags=["gpu", "baseline"])
    fx = await start(api, project="fx", tags=["baseline"])
    crypto = await start(api, project="crypto", tags=["gpu"])
    for op_id in (fx_gpu, fx, crypto):
        await wait_for_status(api, op_id, {"completed"})
    assert await listed(api, project="fx") == ([fx, fx_gpu], 2)
    assert await listed(api, project="fx", limit=1) == ([fx], 2)
    assert await listed(api, tag="gpu") == ([crypto, fx_gpu], 2)
    assert await listed(api, tag=["gpu", "baseline"]) == ([fx_gpu], 1)
    assert await listed(api, workload="strategy", project="crypto") == ([crypto], 1)
    assert await listed(api, workload="tabular") == ([], 0)


async def test_active_only_lists_pending_running_and_cancelling(api: httpx.AsyncClient, fakes: Fakes) -> None:
    finished = await start(api, project="p")
    await wait_for_status(api, finished, {"completed"})
    fakes.engine.gate = threading.Event()
    running = await start(api, project="p")
    await wait_for_status(api, running, {"running"})
    pending = await start(api, project="p")
    assert await listed(api, active_only="true", project="p") == ([pending, running], 2)
    assert await listed(api, active_only="true", status="running") == ([running], 1)
    fakes.engine.gate.set()
    await wait_for_status(api, pending, {"completed"})
    assert await listed(api, active_only="true") == ([], 0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"project": "Bad Project"}, "query.project"),
        ({"tag": ["ok", "NOPE"]}, "query.tag.1"),
        ({"workload": "quantum"}, "query.workload"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_the_query_parameter(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/api/v1/operations", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == field


async def test_projects_are_counted_by_status_most_recently_active_first(
    api: httpx.AsyncClient, fakes: Fakes
) -> None:
    # "zulu" is active first and finished; "alpha" is active after it (a name order would put zulu
    # first). A running operation's row keeps changing, so it belongs to the most recent project.
    older = await start(api, project="zulu")
    await wait_for_status(api, older, {"completed"})
    first = await start(api, project="alpha")
    await wait_for_status(api, first, {"completed"})
    fakes.engine.gate = threading.Event()
    running = await start(api, project="alpha")
    await wait_for_status(api, running, {"running"})
    pending = await start(api, project="alpha")
    response = await api.get("/api/v1/projects")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [p["project"] for p in items] == ["alpha", "zulu"]
    alpha, zulu = items
    assert (alpha["total"], alpha["by_status"]) == (3, {"completed": 1, "running": 1, "pending": 1})
    assert (zulu["total"], zulu["by_status"]) == (1, {"completed": 1})
    pending_op = (await api.get(f"/api/v1/operations/{pending}")).json()
    older_op = (await api.get(f"/api/v1/operations/{older}")).json()
    assert moment(alpha["last_activity"]) >= moment(pending_op["created_at"])
    assert (
        moment(older_op["completed_at"]) <= moment(zulu["last_activity"]) < moment(pending_op["created_at"])
    )
    fakes.engine.gate.set()
    await wait_for_status(api, pending, {"completed"})


async def test_projects_of_a_new_service_are_an_empty_list(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/projects")
    assert response.json() == {"items": []}


async def test_every_new_query_parameter_and_field_is_described_in_openapi(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/operations"]["get"]["parameters"]}
    for name in ("project", "tag", "workload", "status", "active_only"):
        assert params[name].get("description"), name
    assert "/api/v1/projects" in schema["paths"]
    components = schema["components"]["schemas"]
    for model, fields in {
        "OperationView": ("project", "name", "tags", "workload"),
        "ProjectView": ("project", "total", "by_status", "last_activity"),
    }.items():
        for field in fields:
            assert components[model]["properties"][field].get("description"), f"{model}.{field}"
