"""The one error-to-HTTP mapper: every error leaves as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api.responses import responses
from backend.errors import BackendError, http_status_of
from shared.contracts.errors import error_body, validation_error_body
from shared.contracts.errors import json_details as json_value
from shared.trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)

MAX_TEXT = 2000

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries saying these statuses answer with the error body (``responses.responses``)."""
    return responses(*statuses)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(validation_error_body(list(exc.errors())), status_code=422)


class ErrorText:
    """What an error may say: configured folders shown by their role (``data/…``), never as absolute
    server paths; strings bounded; details as JSON values (lists stay lists, never Python reprs)."""

    def __init__(self, folders: dict[str, Path]) -> None:
        pairs = []
        for label, folder in folders.items():
            for spelling in {str(folder.resolve()), str(folder)}:
                if Path(spelling).is_absolute():
                    pairs.append((spelling.rstrip("/"), label))
        # Longest first, so a folder inside another is replaced as the inner one.
        self._folders = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)

    def text(self, value: str) -> str:
        for spelling, label in self._folders:
            value = value.replace(spelling, label)
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"

    def details(self, value: Any) -> Any:
        """``value`` as JSON: containers recursively, paths and other objects as (cleaned) text."""
        return json_value(value, self.text)

    def body(self, code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return error_body(code, self.text(message), self.details(details or {}))


def json_details(details: dict[str, Any]) -> dict[str, Any]:
    """Error details as JSON values (for errors returned in a 200 body rather than raised)."""
    cleaned: dict[str, Any] = ErrorText({}).details(details)
    return cleaned


def _error_text(app: FastAPI) -> ErrorText:
    settings = getattr(app.state, "settings", None)
    if settings is None:
        return ErrorText({})
    return ErrorText(
        {
            "data": settings.data_dir,
            "models": settings.models_dir,
            "strategies": settings.strategies_dir,
            "commands": settings.commands_dir,
            "runs": settings.runs_dir,
        }
    )


def install_error_handlers(app: FastAPI) -> None:
    text = _error_text(app)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(BackendError)
    async def _backend(_: Request, exc: BackendError) -> JSONResponse:
        status = http_status_of(exc)
        if status >= 500:
            logger.error("%s: %s", exc.code, exc.message)
        return JSONResponse(text.body(exc.code, exc.message, exc.details), status_code=status)

    @app.exception_handler(TrainkitError)
    async def _trainkit(_: Request, exc: TrainkitError) -> JSONResponse:
        status = http_status_of(exc)
        if status >= 500:
            logger.error("trainkit error: %s", exc.message, exc_info=exc)
        return JSONResponse(text.body(exc.code, exc.message, exc.details), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        path = text.text(request.url.path[:200])
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {path}; see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {path}; see /docs"
        return JSONResponse(text.body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "internal error; the server log has the details"
        return JSONResponse(error_body("internal_error", message), status_code=500)
