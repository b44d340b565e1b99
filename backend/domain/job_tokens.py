"""Job tokens: a bearer credential that lets one Ray job reach its own operation's data, progress and result.

A job's runtime_env shows in Ray's dashboard, so the job never gets the shared secret: it gets
``mjt_<operation id>.<expiry unix s>.<hmac-sha256 hex>`` keyed by a key only the backends hold. The
token names its operation (a job cannot act on another one) and expires; the routes also refuse it
once the operation has ended.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

PREFIX = "mjt_"


class JobTokenError(ValueError):
    """The token is malformed, forged, expired or for another operation; the message says which."""


@dataclass(frozen=True)
class JobTokenKey:
    secret: bytes

    def mint(self, operation_id: str, expires_at: datetime) -> str:
        expiry = int(expires_at.timestamp())
        return f"{PREFIX}{operation_id}.{expiry}.{self._mac(operation_id, expiry)}"

    def verify(self, token: str, operation_id: str, now: datetime) -> None:
        """Return if ``token`` was minted by this key for ``operation_id`` and has not expired."""
        if not token.startswith(PREFIX) or token.count(".") < 2:
            raise JobTokenError("not a job token")
        body, expiry_text, mac = token[len(PREFIX) :].rsplit(".", 2)
        if not expiry_text.isdigit():
            raise JobTokenError("not a job token")
        expiry = int(expiry_text)
        if not hmac.compare_digest(mac, self._mac(body, expiry)):
            raise JobTokenError("job token signature does not match")
        if body != operation_id:
            raise JobTokenError(f"job token is for operation {body}, not {operation_id}")
        if now.timestamp() >= expiry:
            raise JobTokenError("job token expired")

    def _mac(self, operation_id: str, expiry: int) -> str:
        message = f"modelyard-ray-job|{operation_id}|{expiry}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def derive_key(shared_secrets: list[str], fallback: bytes) -> JobTokenKey:
    """Keyed from the first shared secret (every backend of a deployment has it) through HMAC, so the
    secret itself never leaves the backend; ``fallback`` (a per-deployment random key) without one."""
    if shared_secrets:
        return JobTokenKey(
            hmac.new(shared_secrets[0].encode(), b"modelyard job tokens", hashlib.sha256).digest()
        )
    return JobTokenKey(fallback)
