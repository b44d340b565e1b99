"""The one place host errors become HTTP: status by error class, body ``{"error": {code, message, details}}``.

Framework errors (a malformed body, an unknown route, a wrong method, a too large body) answer with the
same body as the service's own errors, never FastAPI's ``{"detail": ...}``: the backend reads one shape.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from host_service.errors import (
    CapacityExhaustedError,
    CommandNotFoundError,
    HostServiceError,
    IllegalTransitionError,
    InvalidConfigError,
    ResultNotAvailableError,
    SessionConflictError,
    SessionNotFoundError,
)
from shared.contracts.errors import error_body, validation_error_body

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

_STATUS: tuple[tuple[type[HostServiceError], int], ...] = (
    (SessionNotFoundError, 404),
    (CommandNotFoundError, 404),
    (InvalidConfigError, 422),
    (SessionConflictError, 409),
    (IllegalTransitionError, 409),
    (ResultNotAvailableError, 409),
    (CapacityExhaustedError, 503),
)


def status_of(error: HostServiceError) -> int:
    return next((status for cls, status in _STATUS if isinstance(error, cls)), 500)


async def host_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HostServiceError)
    body = error_body(exc.code, exc.message, exc.details)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, CapacityExhaustedError) else None
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


async def validation_response(request: Request, exc: Exception) -> JSONResponse:
    """422 naming the first bad field by its path (``request.overrides.epochs``) and listing all."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_error_body(list(exc.errors())), status_code=422)


async def http_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = str(exc.detail)
    path = request.url.path[:200]
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {path}; see /docs"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {path}; see /docs"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def unexpected_error_response(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "internal error; the host log has the details"
    return JSONResponse(error_body("internal_error", message), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HostServiceError, host_error_response)
    app.add_exception_handler(RequestValidationError, validation_response)
    app.add_exception_handler(StarletteHTTPException, http_error_response)
    app.add_exception_handler(Exception, unexpected_error_response)
