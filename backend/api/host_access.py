"""Who may call the endpoints hosts use: messages signed with a shared secret, each accepted once.

Signatures (:mod:`shared.contracts.signing`) cover the raw bytes, so they are checked on the bytes as
received, before anything parses them: the result callback as a Standard Webhooks v1 message, the data
downloads as signed requests (method, path with query, body). A verified ``webhook-id`` is remembered by
the replay guard and refused when it comes again (409 ``replayed``). Once a secret is set nobody is
exempt, loopback callers included. With no secret configured only loopback callers are let in: an
unsigned backend must never take results or hand out data over the network.
"""

from __future__ import annotations

import ipaddress
import logging

from fastapi import Request

from backend.components import Components
from backend.errors import (
    PayloadTooLargeError,
    ReplayedMessageError,
    ReplayGuardFullError,
    SignatureRejectedError,
)
from shared.contracts.replay import ReplayError
from shared.contracts.signing import SignatureError, SignedMessage, asgi_target, verify, verify_request

logger = logging.getLogger(__name__)


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_signed_webhook(request: Request, body: bytes, components: Components) -> None:
    """Return when ``body`` is a Standard Webhooks message of a shared secret, seen for the first time."""
    secrets = components.settings.secrets
    if _unsigned_allowed(request, secrets):
        return
    try:
        message = verify(secrets, request.headers, body)
    except SignatureError as exc:
        raise _refused(request, exc) from exc
    _remember(request, message, components)


def check_signed_request(request: Request, body: bytes, components: Components) -> None:
    """Return when this request (method, path with query, body) is signed and seen for the first time."""
    secrets = components.settings.secrets
    if _unsigned_allowed(request, secrets):
        return
    try:
        message = verify_request(secrets, request.headers, request.method, asgi_target(request.scope), body)
    except SignatureError as exc:
        raise _refused(request, exc) from exc
    _remember(request, message, components)


def _unsigned_allowed(request: Request, secrets: list[str]) -> bool:
    if secrets:
        return False
    if is_loopback(request):
        return True
    raise SignatureRejectedError(
        "this backend has no MODELYARD_SHARED_SECRET, so it only takes host calls from loopback; "
        "set the same secret on backend and hosts",
    )


def _refused(request: Request, exc: SignatureError) -> SignatureRejectedError:
    logger.warning("rejected %s %s: %s", request.method, request.url.path, exc.reason)
    return SignatureRejectedError(f"request refused: {exc.reason}", reason=exc.reason)


def _remember(request: Request, message: SignedMessage, components: Components) -> None:
    try:
        components.host_replay.remember(message.msg_id, message.timestamp)
    except ReplayError as exc:
        logger.warning("rejected %s %s: %s", request.method, request.url.path, exc.reason)
        error = ReplayedMessageError if exc.code == "replayed" else ReplayGuardFullError
        raise error(f"request refused: {exc.reason}", reason=exc.code) from exc


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past ``limit`` (chunked bodies included)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            f"request body of {declared} bytes exceeds {limit} bytes (MODELYARD_CALLBACK_MAX_BYTES)",
            limit=limit,
            size=int(declared),
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(
                f"request body exceeds {limit} bytes (MODELYARD_CALLBACK_MAX_BYTES)", limit=limit
            )
    return bytes(body)
