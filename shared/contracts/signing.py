"""Request signing between backend and host, in the manner of Standard Webhooks.

Every request either side sends carries three headers::

    webhook-id         a unique message id (the same on every retry of one message)
    webhook-timestamp  seconds since the epoch when this attempt was signed
    webhook-signature  "v1,<base64 HMAC-SHA256(secret, f'{id}.{timestamp}.' + body)>"

``webhook-signature`` may hold several space-separated signatures (one per secret while a secret is
rotated); the receiver accepts a request when any of them matches any of its secrets. Receivers verify
before they parse the body, reject timestamps more than ``tolerance_s`` away from now (replay window),
and compare in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(Exception):
    """A request's signature headers are missing, stale or do not match; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` under ``secret``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign(
    secret: str | Sequence[str],
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Headers that sign ``body``; several secrets give several space-separated signatures."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(secrets):
        raise ValueError("sign() needs at least one non-empty secret")
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
    }


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Return when ``body`` is signed by one of ``secrets`` within ``tolerance_s``; else raise.

    ``headers`` is looked up case-insensitively when it is a plain dict (HTTP headers already are).
    """
    lookup = {key.lower(): value for key, value in headers.items()}
    msg_id = _required(lookup, ID_HEADER)
    raw_timestamp = _required(lookup, TIMESTAMP_HEADER)
    offered = _required(lookup, SIGNATURE_HEADER)
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError(f"header {TIMESTAMP_HEADER} is not an integer: {raw_timestamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"stale timestamp: {TIMESTAMP_HEADER} is {int(current - timestamp)} s away from now "
            f"(tolerance {tolerance_s} s); check the clocks of both machines"
        )
    candidates = [item for item in offered.split(" ") if item.startswith(f"{SIGNATURE_VERSION},")]
    for secret in secrets:
        expected = signature(secret, msg_id, timestamp, body).encode()
        if any(hmac.compare_digest(expected, candidate.encode()) for candidate in candidates):
            return
    raise SignatureError("bad signature: no signature matches a configured shared secret")


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing header {name}")
    return value
