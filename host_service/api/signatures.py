"""Every request must be signed by the backend: verified here, on the raw bytes, before any parsing.

A pure ASGI middleware (not a dependency) because FastAPI parses JSON bodies before dependencies run.
Order: a declared or streamed body over ``max_body_bytes`` is 413 before anything is verified (never
buffered whole); then the signature over method, path with query, body, id and timestamp (401
``bad_signature``); then the id, refused when seen before (409 ``replayed``). The body is replayed to
the app. Every caller is treated alike: loopback is no exemption once a secret is set.

The answers that carry a result to the backend are signed too (:func:`signed_result_headers`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.replay import ReplayError, ReplayGuard
from shared.contracts.signing import (
    ID_HEADER,
    SignatureError,
    asgi_target,
    sign_response,
    verify_request,
)

logger = logging.getLogger(__name__)


class SignatureMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        secrets: Sequence[str],
        tolerance_s: int,
        max_body_bytes: int,
        replay: ReplayGuard,
    ) -> None:
        self.app = app
        self.secrets = list(secrets)
        self.tolerance_s = tolerance_s
        self.max_body_bytes = max_body_bytes
        self.replay = replay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = None if self._declared_too_large(scope) else await self._read_body(receive)
        if body is None:
            response = _error(413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes")
            await response(scope, receive, send)
            return
        if self.secrets:
            refusal = self._refusal(scope, body)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, body: bytes) -> JSONResponse | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, target = scope["method"], asgi_target(scope)
        try:
            message = verify_request(
                self.secrets, headers, method, target, body, tolerance_s=self.tolerance_s
            )
            self.replay.remember(message.msg_id, message.timestamp)
        except SignatureError as exc:
            logger.warning("rejected %s %s: %s", method, scope["path"], exc.reason)
            return _error(401, "bad_signature", exc.reason)
        except ReplayError as exc:
            logger.warning("rejected %s %s: %s", method, scope["path"], exc.reason)
            return _error(409 if exc.code == "replayed" else 503, exc.code, exc.reason)
        return None

    def _declared_too_large(self, scope: Scope) -> bool:
        declared = dict(scope["headers"]).get(b"content-length", b"")
        return declared.isdigit() and int(declared) > self.max_body_bytes

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


def signed_result_headers(request: Request, secrets: Sequence[str], sha256: str) -> dict[str, str]:
    """Headers that sign this answer (bound to the request's id, method and target) over ``sha256``.

    No secret, no headers: the backend then has none either and checks nothing (loopback development).
    """
    if not secrets:
        return {}
    request_id = request.headers[ID_HEADER]  # verified by the middleware before the route ran
    return sign_response(secrets, request_id, request.method, asgi_target(request.scope), sha256)


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
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": {}}}, status_code=status, headers=headers
    )
