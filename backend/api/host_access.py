"""Who may call the endpoints hosts use: requests signed with a shared secret, or loopback callers.

The signature (Standard Webhooks, :mod:`shared.contracts.signing`) covers the raw body, so it is checked
on the bytes as received, before anything parses them. With no secret configured only loopback callers
are let in: an unsigned backend must never take results or hand out data over the network.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from fastapi import Request

from backend.errors import PayloadTooLargeError, SignatureRejectedError
from shared.contracts.signing import SIGNATURE_HEADER, SignatureError, verify

logger = logging.getLogger(__name__)


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    if host in ("localhost", "testclient", "testserver"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_signed(request: Request, body: bytes, secrets: Sequence[str], *, allow_loopback: bool) -> None:
    """Return when ``body`` is signed by a shared secret (or an unsigned call is acceptable); else raise."""
    if not secrets:
        if is_loopback(request):
            return
        raise SignatureRejectedError(
            "this backend has no MODELYARD_SHARED_SECRET, so it only takes host calls from loopback; "
            "set the same secret on backend and hosts",
        )
    if allow_loopback and SIGNATURE_HEADER not in request.headers and is_loopback(request):
        return
    try:
        verify(secrets, request.headers, body)
    except SignatureError as exc:
        logger.warning("rejected %s %s: %s", request.method, request.url.path, exc.reason)
        raise SignatureRejectedError(f"request refused: {exc.reason}", reason=exc.reason) from exc


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
