"""Pure ASGI middleware (streaming-safe): request size limit and HTTP latency metrics."""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.errors import error_body


class BodyTooLargeError(StarletteHTTPException):
    """Raised from ``receive`` once a body streams past the limit; the error handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"request body exceeds the limit of {limit} bytes (MODELYARD_MAX_UPLOAD_BYTES)",
        )
        self.limit = limit


class BodySizeLimit:
    """413 for a body over ``max_bytes``: at once when Content-Length says so, else (chunked transfer,
    or a Content-Length that lies) as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_too_large(send, self.max_bytes, int(declared))
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await _send_too_large(send, self.max_bytes, None)


async def _send_too_large(send: Send, limit: int, declared: int | None) -> None:
    size = f"of {declared} bytes " if declared is not None else ""
    message = f"request body {size}exceeds the limit of {limit} bytes (MODELYARD_MAX_UPLOAD_BYTES)"
    details: dict[str, int] = {"limit": limit} if declared is None else {"limit": limit, "size": declared}
    body = json.dumps(error_body("payload_too_large", message, details)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Times every HTTP request into the app's Telemetry, labelled by route template (not raw path).

    Event streams are left out: they last as long as the operation they follow, which would say
    nothing about latency and drown every other route's histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = False

        async def record_status(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                streaming = content_type.startswith(b"text/event-stream")
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            components = getattr(scope["app"].state, "components", None) if "app" in scope else None
            if components is not None and not streaming:
                components.telemetry.observe_request(
                    scope["method"], route, status, time.perf_counter() - started
                )
