"""Every request must be signed by the backend: verified here, on the raw bytes, before any parsing.

A pure ASGI middleware (not a dependency) because FastAPI parses JSON bodies before dependencies run.
It buffers the body up to ``max_body_bytes`` (413 beyond), verifies, then replays it to the app.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.signing import SignatureError, verify

logger = logging.getLogger(__name__)


class SignatureMiddleware:
    def __init__(
        self, app: ASGIApp, *, secrets: Sequence[str], tolerance_s: int, max_body_bytes: int
    ) -> None:
        self.app = app
        self.secrets = list(secrets)
        self.tolerance_s = tolerance_s
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive)
        if body is None:
            response = _error(413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes")
            await response(scope, receive, send)
            return
        if self.secrets:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                verify(self.secrets, headers, body, tolerance_s=self.tolerance_s)
            except SignatureError as exc:
                logger.warning("rejected %s %s: %s", scope["method"], scope["path"], exc.reason)
                await _error(401, "bad_signature", exc.reason)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": {}}}, status_code=status)
