"""The OpenAPI says what the server really sends: walked route by route, so a route added later is held
to the same rules (declare its errors with ``backend.api.responses.responses``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from backend.api.access import Open, access_of
from backend.api.responses import documented_routes
from backend.main import create_app
from backend.settings import Settings

ERROR_REF = "#/components/schemas/ErrorBody"

#: Truly free-form values, by (schema, property): any JSON per key, documented as such. The generated
#: client still gets a class for each (``ErrorInfoDetails``, ``StrategySummaryDetails``).
FREE_FORM = {
    ("ErrorInfo", "details"),
    ("StrategySummary", "details"),
    ("JobFailure", "details"),  # a Ray job's error details, as free-form as ErrorInfo's
    ("ProgressUpdate", "extra"),  # what a host or Ray job adds to its progress: sent, never answered
}

#: Routes that can answer a status beyond the shared ones (401/403/422/500), by what they do.
ROUTE_STATUSES: dict[tuple[str, str], set[int]] = {
    ("POST", "/api/v1/trainings"): {400, 404, 409, 413, 503},
    ("POST", "/api/v1/operations/{operation_id}/cancel"): {404, 409},
    ("DELETE", "/api/v1/operations/{operation_id}"): {404, 409},
    ("GET", "/api/v1/operations/{operation_id}"): {404},
    ("GET", "/api/v1/models/{strategy}/{name}/versions/{version}/download"): {404, 500},
    ("POST", "/api/v1/callbacks/host-result"): {404, 409, 413, 422, 503},
    ("POST", "/api/v1/tokens"): {409},
    ("GET", "/health"): {503},
}

#: Non-JSON answers: the media type each streams.
MEDIA = {
    ("GET", "/api/v1/models/{strategy}/{name}/versions/{version}/download"): "application/zip",
    ("GET", "/api/v1/operations/{operation_id}/events"): "text/event-stream",
    ("GET", "/api/v1/operations/{operation_id}/output"): "text/plain",
    ("GET", "/api/v1/data/{symbol}/{timeframe}/download"): "text/csv",
    ("GET", "/api/v1/data/files/{name}/download"): "text/csv",
}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def _operations(app: FastAPI) -> Iterator[tuple[str, str, APIRoute, dict[str, Any]]]:
    """(method, OpenAPI path, route, operation) of every documented route."""
    paths = app.openapi()["paths"]
    for method, _, path, route in documented_routes(app.routes):
        yield method, path, route, paths[path][method.lower()]


def _template(app: FastAPI, method: str, path: str) -> str:
    return next(t for m, t, p, _ in documented_routes(app.routes) if (m, p) == (method, path))


def _error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if status.isdigit() and int(status) >= 400}


def test_every_error_status_is_declared_with_the_error_body(app: FastAPI) -> None:
    checked = 0
    for method, path, route, operation in _operations(app):
        where = f"{method} {path}"
        for status in _error_statuses(operation):
            content = operation["responses"][str(status)].get("content", {})
            assert content == {"application/json": {"schema": {"$ref": ERROR_REF}}}, (where, status)
        declared = _error_statuses(operation)
        assert 500 in declared, where
        access = access_of(method, _template(app, method, path), metrics_public=True)
        if access is Open.HOST_SIGNED:
            assert 401 in declared, where
        elif access is not Open.PUBLIC:
            assert {401, 403} <= declared, where
        if route.dependant.path_params or route.dependant.query_params or route.body_field:
            assert 422 in declared, where
        if route.body_field is not None:
            assert 413 in declared, where
        missing = ROUTE_STATUSES.get((method, path), set()) - declared
        assert not missing, (where, missing)
        checked += 1
    assert checked > 30


def test_fastapi_validation_error_schema_is_gone(app: FastAPI) -> None:
    schema = app.openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "HTTPValidationError" not in str(schema)


def test_non_json_answers_declare_their_media_type_with_a_string_schema(app: FastAPI) -> None:
    operations = {(method, path): operation for method, path, _, operation in _operations(app)}
    for key, media in MEDIA.items():
        content = operations[key]["responses"]["200"]["content"]
        assert list(content) == [media], key
        assert content[media]["schema"]["type"] == "string", key
    zipped = operations[("GET", "/api/v1/models/{strategy}/{name}/versions/{version}/download")]
    assert zipped["responses"]["200"]["content"]["application/zip"]["schema"]["format"] == "binary"
    # Every 2xx declares a schema: JSON answers a model, others a string.
    for (method, path), operation in operations.items():
        for status, response in operation["responses"].items():
            if status.startswith("2") and status != "204":
                for media_type, body in response.get("content", {}).items():
                    assert body.get("schema"), (method, path, status, media_type)


def _bare_objects(schema: dict[str, Any]) -> list[str]:
    """Every object in the response schemas whose values are untyped (``dict[str, Any]``)."""
    components = schema["components"]["schemas"]
    found: list[str] = []

    def walk(node: Any, where: tuple[str, str]) -> None:
        if isinstance(node, dict):
            if _is_bare(node) and where not in FREE_FORM:
                found.append(".".join(where))
            for key, child in node.items():
                if key == "properties" and isinstance(child, dict):
                    for name, prop in child.items():
                        walk(prop, (where[0], name))
                else:
                    walk(child, where)
        elif isinstance(node, list):
            for child in node:
                walk(child, where)

    for name, component in components.items():
        walk(component, (name, ""))
    return found


def _is_bare(node: dict[str, Any]) -> bool:
    if node.get("type") != "object" or node.get("properties"):
        return False
    values = node.get("additionalProperties", True)
    return values is True or values == {}


def test_no_response_schema_holds_a_bare_object(app: FastAPI) -> None:
    assert _bare_objects(app.openapi()) == []


def test_the_walk_finds_a_bare_object() -> None:
    schema = {
        "components": {
            "schemas": {
                "Loose": {"type": "object", "properties": {"extra": {"type": "object"}}},
                "Typed": {
                    "type": "object",
                    "properties": {"m": {"additionalProperties": {"type": "number"}}},
                },
            }
        }
    }
    assert _bare_objects(schema) == ["Loose.extra"]


def test_statuses_workloads_and_modes_are_enums_and_timestamps_datetimes(app: FastAPI) -> None:
    components = app.openapi()["components"]["schemas"]
    view = components["OperationView"]["properties"]
    assert view["status"] == {"$ref": "#/components/schemas/OperationStatusName"}
    assert view["workload"]["$ref"] == "#/components/schemas/Workload"
    assert view["execution_mode"] == {"$ref": "#/components/schemas/ExecutionModeName"}
    for name, component in components.items():
        for prop, spec in component.get("properties", {}).items():
            if prop.endswith("_at") or prop in ("at", "last_heartbeat", "last_activity"):
                kinds = [spec, *spec.get("anyOf", [])]
                assert any(k.get("format") == "date-time" for k in kinds), (name, prop, spec)


def test_operation_ids_are_the_route_names_and_unique(app: FastAPI) -> None:
    ids = [operation["operationId"] for _, _, _, operation in _operations(app)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"start_training", "get_operation", "list_models", "download_model_version"} <= set(ids)
