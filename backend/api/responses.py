"""What each route declares in the OpenAPI: every status it can send, with the body it really sends.

Two halves. A route declares what only it knows with ``responses(...)`` in its decorator: its own error
statuses (404, 409, …) and, for a non-JSON answer, ``content=`` the media type it streams. What holds for
every route is added once, to the generated document, by ``declare_shared_responses`` — from the same tables the
server acts on, so the declaration cannot drift from the behaviour:

- 422 carries our ``ErrorBody`` (the validation handler's answer), never FastAPI's ``HTTPValidationError``;
- 401 and 403 on every route the token check guards (``access.ROUTE_ACCESS``; 401 alone on host-signed
  routes, whose signature check answers 401);
- 413 on every route that reads a body (the body size limit answers it before the route runs);
- 500 everywhere (the catch-all handler's ``internal_error``).

``tests/backend/test_openapi_declarations.py`` walks ``app.openapi()`` and fails on a route that lacks
any of these, or on a response schema holding a bare (untyped) object.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, compile_path

from backend.api.access import Open, access_of, route_entries
from shared.contracts.api import ErrorBody

#: What each error status means here; the body is always ``ErrorBody``.
ERROR_STATUSES: dict[int, str] = {
    400: "bad_request: the request is malformed (e.g. an invalid strategy); error.details names the field",
    401: "unauthenticated: no valid API token (or host signature) came with the request",
    403: "forbidden: the API token lacks the scope this route needs",
    404: "not_found: the named resource does not exist; the message says which",
    409: "conflict: the resource's state forbids this (e.g. idempotency_conflict, a finished operation)",
    413: "payload_too_large: the body exceeds the configured limit named in the message",
    415: "unsupported_media_type: the body's content type is not one this route reads",
    422: "validation error: error.details.field names the field at fault and how to fix it",
    500: "internal_error (the server log has the details), or a named server-side failure",
    503: "unavailable: a needed service (database, host) does not answer; retry later",
}

#: Media types served as text (a string schema); everything else non-JSON is binary.
TEXT_MEDIA = ("text/", "application/openmetrics")

ERROR_SCHEMA_REF = "#/components/schemas/ErrorBody"


def error_response(status: int) -> dict[str, Any]:
    return {"model": ErrorBody, "description": ERROR_STATUSES.get(status, "error")}


def responses(
    *statuses: int, content: str | None = None, description: str = "", ok: int = 200
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: its own error ``statuses`` (with ``ErrorBody``) and, given
    ``content``, the media type its ``ok`` answer streams, declared with a string/binary schema."""
    declared: dict[int | str, dict[str, Any]] = {status: error_response(status) for status in statuses}
    if content is not None:
        declared[ok] = {"content": {content: {"schema": media_schema(content)}}, "description": description}
    return declared


def media_schema(media_type: str) -> dict[str, str]:
    if media_type.startswith(TEXT_MEDIA):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def documented_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, str, str, APIRoute]]:
    """(method, template, OpenAPI path, route) of every route in the OpenAPI document."""
    for entry in route_entries(routes):
        if isinstance(entry.route, APIRoute) and entry.route.include_in_schema:
            _, path_format, _ = compile_path(entry.template)
            for method in sorted(entry.methods):
                yield method, entry.template, path_format, entry.route


def operation_id(route: APIRoute) -> str:
    """The route function's name (``start_training``, ``get_operation``): what a generated client names
    its call after. Unique by construction; the declarations test checks it."""
    return route.name


def declare_shared_responses(
    schema: dict[str, Any], routes: Sequence[BaseRoute], *, metrics_public: bool
) -> dict[str, Any]:
    """Add to a generated OpenAPI document what every route shares (see the module docstring)."""
    for method, template, path_format, route in documented_routes(routes):
        operation = schema.get("paths", {}).get(path_format, {}).get(method.lower())
        if operation is not None:
            declared = operation.setdefault("responses", {})
            if "422" in declared:
                declared["422"] = _error_entry(422)
            access = access_of(method, template, metrics_public=metrics_public)
            guarded = [] if access is Open.PUBLIC else [401] if access is Open.HOST_SIGNED else [401, 403]
            # The body limit (``middleware.BodySizeLimit``) answers 413 before any route with a body runs.
            limited = [413] if route.body_field is not None else []
            for status in (*guarded, *limited, 500):
                declared.setdefault(str(status), _error_entry(status))
    # FastAPI's validation schemas are no longer referenced by any route.
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema


def _error_entry(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_STATUSES.get(status, "error"),
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
    }
