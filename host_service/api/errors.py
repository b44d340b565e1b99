"""The one place host errors become HTTP: status by error class, body ``{"error": {code, message, details}}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from host_service.errors import (
    CapacityExhaustedError,
    HostServiceError,
    IllegalTransitionError,
    ResultNotAvailableError,
    SessionConflictError,
    SessionNotFoundError,
)

_STATUS: tuple[tuple[type[HostServiceError], int], ...] = (
    (SessionNotFoundError, 404),
    (SessionConflictError, 409),
    (IllegalTransitionError, 409),
    (ResultNotAvailableError, 409),
    (CapacityExhaustedError, 503),
)


def status_of(error: HostServiceError) -> int:
    return next((status for cls, status in _STATUS if isinstance(error, cls)), 500)


async def host_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HostServiceError)
    body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, CapacityExhaustedError) else None
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HostServiceError, host_error_response)
