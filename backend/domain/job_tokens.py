"""Job tokens: a bearer credential that lets one Ray job reach its own operation's data, progress and result.

A job's runtime_env shows in Ray's dashboard, so the job never gets the shared secret: it gets
``mjs_<submission id>.<expiry unix s>.<hmac-sha256 hex>`` keyed by a key only the backends hold. The
token names its job's submission, which names its operation (the operation id for a first attempt,
``<operation id>-attempt-<n>`` for a re-submission): a job cannot act on another operation, and the
routes refuse an earlier attempt's job once its operation runs as a later one, and any job once the
operation has ended. The token expires.

A token minted before Dec 2026 (``mjt_<operation id>…``, its MAC over the operation) named the
operation only: it is still taken until it expires, for any job of its operation, so that a job
running across the upgrade is not cut off.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

PREFIX = "mjs_"
#: Tokens minted before Dec 2026: they name the operation, not the job's submission.
LEGACY_PREFIX = "mjt_"
#: Between the operation id and the attempt's number in a re-submission's id.
ATTEMPT = "-attempt-"


class JobTokenError(ValueError):
    """The token is malformed, forged, expired or for another operation; the message says which."""


@dataclass(frozen=True)
class JobTokenKey:
    secret: bytes

    def mint(self, submission_id: str, expires_at: datetime) -> str:
        expiry = int(expires_at.timestamp())
        return f"{PREFIX}{submission_id}.{expiry}.{self._mac(PREFIX, submission_id, expiry)}"

    def verify(self, token: str, operation_id: str, now: datetime) -> str | None:
        """The submission id ``token`` was minted for by this key, if it is a job of ``operation_id`` and
        the token has not expired (None for a legacy token: any job of the operation); JobTokenError
        otherwise."""
        prefix = next((p for p in (PREFIX, LEGACY_PREFIX) if token.startswith(p)), None)
        if prefix is None or token.count(".") < 2:
            raise JobTokenError("not a job token")
        body, expiry_text, mac = token[len(prefix) :].rsplit(".", 2)
        if not expiry_text.isdigit():
            raise JobTokenError("not a job token")
        expiry = int(expiry_text)
        if not hmac.compare_digest(mac, self._mac(prefix, body, expiry)):
            raise JobTokenError("job token signature does not match")
        operation = operation_of(body) if prefix == PREFIX else body
        if operation != operation_id:
            raise JobTokenError(f"job token is for operation {operation}, not {operation_id}")
        if now.timestamp() >= expiry:
            raise JobTokenError("job token expired")
        return body if prefix == PREFIX else None

    def _mac(self, prefix: str, subject: str, expiry: int) -> str:
        domain = "modelyard-ray-job" if prefix == LEGACY_PREFIX else "modelyard-ray-job-submission"
        message = f"{domain}|{subject}|{expiry}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def operation_of(submission_id: str) -> str:
    """The operation a Ray job's submission id belongs to: ``op_x`` and ``op_x-attempt-3`` both ``op_x``."""
    operation, attempt, number = submission_id.rpartition(ATTEMPT)
    return operation if attempt and number.isdigit() else submission_id


def derive_key(shared_secrets: list[str], fallback: bytes) -> JobTokenKey:
    """Keyed from the first shared secret (every backend of a deployment has it) through HMAC, so the
    secret itself never leaves the backend; ``fallback`` (a per-deployment random key) without one."""
    if shared_secrets:
        return JobTokenKey(
            hmac.new(shared_secrets[0].encode(), b"modelyard job tokens", hashlib.sha256).digest()
        )
    return JobTokenKey(fallback)
