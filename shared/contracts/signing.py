"""Signatures between backend and host: Standard Webhooks v1 for the result callback, and the same
HMAC-SHA256 over a wider message for every other request and for the responses that carry results.

Three kinds of signed message, one key per shared secret:

============  ==================================  =================================================
kind          signature header                    HMAC-SHA256 over
============  ==================================  =================================================
webhook       ``webhook-signature``               ``{id}.{timestamp}.{body}`` (Standard Webhooks v1;
              (the result callback)               the official libraries verify it)
request       ``modelyard-request-signature``     ``modelyard.request.v1\\n{id}\\n{timestamp}\\n
              (every other call, both ways)       {METHOD}\\n{path?query}\\n{body}``
response      ``modelyard-response-signature``    ``modelyard.response.v1\\n{request id}\\n{timestamp}\\n
              (a pulled result or model)          {METHOD}\\n{path?query}\\n{sha256 hex of the body}``
============  ==================================  =================================================

Every signed message also carries ``webhook-id`` (unique per attempt; a response echoes its request's)
and ``webhook-timestamp`` (seconds since the epoch). A signature header holds ``v1,<base64>`` items,
space-separated, one per configured secret; a receiver accepts any item that matches any of its secrets.
The request and response contents start with a label whose second dot-separated part is not a number,
so none of them can be read as a webhook message (``{id}.{timestamp}.…``) or as each other.

A secret is either the Standard Webhooks form ``whsec_<base64>`` (the key is the decoded bytes) or any
other string (the key is its UTF-8 bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
REQUEST_SIGNATURE_HEADER = "modelyard-request-signature"
RESPONSE_SIGNATURE_HEADER = "modelyard-response-signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
WHSEC_PREFIX = "whsec_"

_REQUEST_LABEL = b"modelyard.request.v1"
_RESPONSE_LABEL = b"modelyard.response.v1"
_UPGRADE_HINT = "backend and hosts must run the same modelyard version: upgrade both together"


class SignatureError(Exception):
    """A message's signature headers are missing, stale or do not match; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedMessage:
    """What a verified message was signed with: its id and timestamp (for the replay guard)."""

    msg_id: str
    timestamp: int


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: the decoded bytes of ``whsec_<base64>``, else its UTF-8 bytes."""
    if not secret:
        raise ValueError("a shared secret may not be empty")
    if not secret.startswith(WHSEC_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(WHSEC_PREFIX)
    try:
        # Unpadded base64 is common in whsec_ secrets; the official libraries accept it too.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"a secret starting with {WHSEC_PREFIX!r} must be base64 after the prefix; "
            'generate one with: python -c "import base64, secrets; '
            "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
        ) from None
    if not key:
        raise ValueError(f"the secret {WHSEC_PREFIX}… decodes to no bytes")
    return key


def check_secrets(secrets: Sequence[str]) -> list[str]:
    """``secrets`` unchanged once every one has a usable key; else ValueError naming the problem."""
    for secret in secrets:
        secret_key(secret)
    return list(secrets)


def asgi_target(scope: Mapping[str, Any]) -> str:
    """The path with its query of an ASGI request, as the client sent it (the bytes it signed)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else quote(str(scope.get("path", "/")))
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --- the three message contents ------------------------------------------------------------------


def webhook_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def request_content(msg_id: str, timestamp: int, method: str, target: str, body: bytes) -> bytes:
    head = [
        _REQUEST_LABEL,
        msg_id.encode(),
        str(timestamp).encode(),
        method.upper().encode(),
        target.encode(),
    ]
    return b"\n".join(head) + b"\n" + body


def response_content(request_id: str, timestamp: int, method: str, target: str, sha256: str) -> bytes:
    parts = [request_id, str(timestamp), method.upper(), target, sha256]
    return b"\n".join([_RESPONSE_LABEL, *(part.encode() for part in parts)])


def signature(secret: str, content: bytes) -> str:
    """The ``v1,<base64>`` HMAC-SHA256 of ``content`` under ``secret``'s key."""
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def _signatures(secrets: str | Sequence[str], content: bytes) -> str:
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    if not listed or not all(listed):
        raise ValueError("signing needs at least one non-empty secret")
    return " ".join(signature(s, content) for s in listed)


# --- signing -------------------------------------------------------------------------------------


def sign(
    secret: str | Sequence[str], body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks v1 headers for ``body`` (the result callback); several secrets, several items."""
    msg_id = msg_id or new_message_id()
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: _signatures(secret, webhook_content(msg_id, timestamp, body)),
    }


def sign_request(
    secret: str | Sequence[str],
    method: str,
    target: str,
    body: bytes = b"",
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Headers that sign one request: ``method`` on ``target`` (the path with its query) with ``body``."""
    msg_id = msg_id or new_message_id()
    timestamp = int(time.time()) if timestamp is None else timestamp
    content = request_content(msg_id, timestamp, method, target, body)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        REQUEST_SIGNATURE_HEADER: _signatures(secret, content),
    }


def sign_response(
    secret: str | Sequence[str],
    request_id: str,
    method: str,
    target: str,
    sha256: str,
    *,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Headers that sign the answer to request ``request_id`` whose body has digest ``sha256``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    content = response_content(request_id, timestamp, method, target, sha256)
    return {
        ID_HEADER: request_id,
        TIMESTAMP_HEADER: str(timestamp),
        RESPONSE_SIGNATURE_HEADER: _signatures(secret, content),
    }


# --- verifying -----------------------------------------------------------------------------------


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> SignedMessage:
    """The message when ``body`` carries a Standard Webhooks v1 signature of one of ``secrets``."""
    lookup = _lower(headers)
    message = _message(lookup, tolerance_s, now)
    content = webhook_content(message.msg_id, message.timestamp, body)
    _match(secrets, content, _required(lookup, SIGNATURE_HEADER))
    return message


def verify_request(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> SignedMessage:
    """The message when this request (method, target, body) is signed by one of ``secrets``."""
    lookup = _lower(headers)
    if REQUEST_SIGNATURE_HEADER not in lookup and SIGNATURE_HEADER in lookup:
        raise SignatureError(
            f"missing header {REQUEST_SIGNATURE_HEADER}: the caller signs only id, timestamp and body "
            f"(an older modelyard); {_UPGRADE_HINT}"
        )
    message = _message(lookup, tolerance_s, now)
    offered = _required(lookup, REQUEST_SIGNATURE_HEADER)
    _match(secrets, request_content(message.msg_id, message.timestamp, method, target, body), offered)
    return message


def verify_response(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    request_id: str,
    method: str,
    target: str,
    sha256: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Return when the answer to ``request_id`` with body digest ``sha256`` is signed; else raise."""
    lookup = _lower(headers)
    if RESPONSE_SIGNATURE_HEADER not in lookup:
        raise SignatureError(
            f"missing header {RESPONSE_SIGNATURE_HEADER} on the answer: the host does not sign results "
            f"(an older modelyard, or no shared secret there); {_UPGRADE_HINT}"
        )
    message = _message(lookup, tolerance_s, now)
    if not hmac.compare_digest(message.msg_id.encode(), request_id.encode()):
        raise SignatureError(f"the answer's {ID_HEADER} is not the id of the request it answers")
    content = response_content(request_id, message.timestamp, method, target, sha256)
    _match(secrets, content, lookup[RESPONSE_SIGNATURE_HEADER])


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _message(headers: Mapping[str, str], tolerance_s: int, now: float | None) -> SignedMessage:
    msg_id = _required(headers, ID_HEADER)
    raw_timestamp = _required(headers, TIMESTAMP_HEADER)
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError(f"header {TIMESTAMP_HEADER} is not an integer: {raw_timestamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        direction = "old" if timestamp < current else "in the future"
        raise SignatureError(
            f"stale timestamp: {TIMESTAMP_HEADER} is {abs(int(current - timestamp))} s {direction} "
            f"(tolerance {tolerance_s} s); check the clocks of both machines"
        )
    return SignedMessage(msg_id, timestamp)


def _match(secrets: Sequence[str], content: bytes, offered: str) -> None:
    candidates = [item.encode() for item in offered.split(" ") if item.startswith(f"{SIGNATURE_VERSION},")]
    for secret in secrets:
        expected = signature(secret, content).encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return
    raise SignatureError("bad signature: no signature matches a configured shared secret")


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing header {name}")
    return value
