"""Pure ASGI middleware (streaming-safe): request size limit and HTTP latency metrics."""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import error_body


class BodySizeLimit:
    """Rejects a request whose declared Content-Length exceeds ``max_bytes`` with 413, before reading it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope.get("headers", [])).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                await _send_too_large(send, int(declared), self.max_bytes)
                return
        await self.app(scope, receive, send)


async def _send_too_large(send: Send, declared: int, limit: int) -> None:
    message = (
        f"request body of {declared} bytes exceeds the limit of {limit} bytes (MODELYARD_MAX_UPLOAD_BYTES)"
    )
    body = json.dumps(error_body("payload_too_large", message, {"limit": limit, "size": declared})).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Times every HTTP request into the app's Telemetry, labelled by route template (not raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            components = getattr(scope["app"].state, "components", None) if "app" in scope else None
            if components is not None:
                components.telemetry.observe_request(
                    scope["method"], route, status, time.perf_counter() - started
                )
