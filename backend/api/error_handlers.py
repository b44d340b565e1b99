"""The one error-to-HTTP mapper: every error leaves as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.errors import BackendError, error_body, http_status_of
from shared.contracts.api import ErrorBody
from shared.trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries saying these statuses answer with the error body."""
    return {code: {"model": ErrorBody, "description": _HTTP_CODES.get(code, "error")} for code in statuses}


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        problem = errors[0].get("ctx", {}).get("error", "invalid JSON")
        message = f"the request body is not valid JSON: {problem}"
        return JSONResponse(error_body("malformed_json", message), status_code=400)
    fields = [
        {"field": _field_path(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(fields) > 1:
        message += f" (and {len(fields) - 1} more)"
    details = {"field": first["field"], "errors": fields}
    return JSONResponse(error_body("validation_error", message, details), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(BackendError)
    async def _backend(_: Request, exc: BackendError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=http_status_of(exc))

    @app.exception_handler(TrainkitError)
    async def _trainkit(_: Request, exc: TrainkitError) -> JSONResponse:
        status = http_status_of(exc)
        if status >= 500:
            logger.error("trainkit error: %s", exc.message, exc_info=exc)
        details = {
            k: v if isinstance(v, int | float | str | bool | None) else str(v) for k, v in exc.details.items()
        }
        return JSONResponse(error_body(exc.code, exc.message, details), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "internal error; the server log has the details"
        return JSONResponse(error_body("internal_error", message), status_code=500)
