"""The backend's error taxonomy and its one mapping to HTTP status codes.

Errors are grouped by what the caller can do: fix the request (422/400), look elsewhere (404), stop
asking for something the operation's state forbids (409), or retry later (503). Trainkit errors are
mapped here too, so no layer above the domain ever string-matches a message.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.errors import CodedError
from shared.trainkit.errors import (
    CheckpointError,
    CommandNotFoundError,
    ConfigError,
    DataError,
    DataNotFoundError,
    ExportError,
    ExportUnavailableError,
    ModelNotFoundError,
    TrainkitError,
)


class BackendError(CodedError):
    """Root of every error the backend raises on purpose; ``status_code`` is its HTTP mapping."""

    code = "backend_error"
    status_code = 500


class InvalidRequestError(BackendError):
    code = "invalid_request"
    status_code = 422


class NotFoundError(BackendError):
    code = "not_found"
    status_code = 404


class OperationNotFoundError(NotFoundError):
    code = "operation_not_found"


class StrategyNotFoundError(NotFoundError):
    code = "strategy_not_found"


class IllegalTransitionError(BackendError):
    """An operation was asked to move to a status its current status does not allow."""

    code = "illegal_transition"
    status_code = 409


class IdempotencyConflictError(BackendError):
    """An idempotency key was reused with a request body other than the one it was first used with."""

    code = "idempotency_conflict"
    status_code = 409


class ModelIntegrityError(BackendError):
    """A stored model version's files do not match the sha256 recorded when it was saved."""

    code = "model_corrupted"
    status_code = 500


class ExecutionModeUnavailableError(BackendError):
    """No execution mode can run the request right now (e.g. a GPU is required and no host is up)."""

    code = "execution_mode_unavailable"
    status_code = 503


class PayloadTooLargeError(BackendError):
    code = "payload_too_large"
    status_code = 413


class HostError(BackendError):
    """A host service could not do what was asked; ``details['host']`` names it."""

    code = "host_error"
    status_code = 502


class HostUnavailableError(HostError):
    """Retryable: the host did not answer (timeout, refused connection, 5xx, at capacity)."""

    code = "host_unavailable"
    status_code = 503

    def __init__(self, message: str, *, retry_after_s: float | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after_s = retry_after_s


class HostRejectedError(HostError):
    """Not retryable as is: the host refused the request (4xx) or answered nonsense."""

    code = "host_rejected"


class RayError(BackendError):
    """The Ray cluster of ray mode could not do what was asked; ``details['address']`` names it."""

    code = "ray_error"
    status_code = 502


class RayUnavailableError(RayError):
    """Retryable: the Ray Jobs API did not answer (refused, timeout, 5xx)."""

    code = "ray_unavailable"
    status_code = 503


class RayRejectedError(RayError):
    """Not retryable as is: Ray refused the call (e.g. a submission id that exists already)."""

    code = "ray_rejected"


class JobTokenRejectedError(BackendError):
    """A Ray job's call without a valid job token for its operation."""

    code = "bad_job_token"
    status_code = 401


class SignatureRejectedError(BackendError):
    """A request from a host is unsigned, stale or signed with an unknown secret."""

    code = "bad_signature"
    status_code = 401


class ReplayedMessageError(BackendError):
    """A signed message from a host came a second time (the same ``webhook-id``): refused, not redone."""

    code = "replayed"
    status_code = 409


class ReplayGuardFullError(BackendError):
    """Retryable: too many signed messages within the tolerance window to remember one more."""

    code = "replay_guard_full"
    status_code = 503


class ResultRejectedError(BackendError):
    """A host's result is malformed, fails its checksum, or holds something other than weights."""

    code = "result_rejected"
    status_code = 422


class ResultBeingStoredError(BackendError):
    """Another backend is storing this operation's model right now: retry shortly (retryable)."""

    code = "result_being_stored"
    status_code = 503


class ResultConflictError(BackendError):
    """A result arrived for an operation that cannot take it (finished otherwise, another session)."""

    code = "result_conflict"
    status_code = 409


class AuthenticationError(BackendError):
    """No usable bearer token came with the request; ``details['reason']`` says why (missing, malformed,
    unknown, expired, revoked)."""

    code = "unauthenticated"
    status_code = 401


class PermissionDeniedError(BackendError):
    """The token is valid but lacks the scope the route needs."""

    code = "forbidden"
    status_code = 403


class TokenNotFoundError(NotFoundError):
    code = "token_not_found"


class TokenExistsError(BackendError):
    """A token of that name exists (revoked ones too: a name stays bound to the token that had it)."""

    code = "token_exists"
    status_code = 409


class AuthSetupError(BackendError):
    """The backend must not start as configured: it would serve its API to the network unauthenticated."""

    code = "auth_not_configured"


class ListenError(BackendError):
    """The server cannot listen on its address (the port is taken, or the address is not this host's)."""

    code = "cannot_listen"


class SettingsError(BackendError):
    """A setting from the environment is invalid; ``details['env']`` names the variable."""

    code = "invalid_settings"


_TRAINKIT_STATUS: tuple[tuple[type[TrainkitError], int], ...] = (
    (CommandNotFoundError, 404),
    (DataNotFoundError, 404),
    (ModelNotFoundError, 404),
    (ConfigError, 422),
    (DataError, 422),
    (CheckpointError, 422),
    (ExportError, 422),
    (ExportUnavailableError, 503),
)


def http_status_of(error: BackendError | TrainkitError) -> int:
    """The HTTP status that answers ``error``: the one place this decision is made."""
    if isinstance(error, BackendError):
        return error.status_code
    for kind, status in _TRAINKIT_STATUS:
        if isinstance(error, kind):
            return status
    return 500


class AliasNotFoundError(NotFoundError):
    code = "alias_not_found"


class CheckpointRejectedError(BackendError):
    """A shipped checkpoint's bytes are not what its signed request announced (cut short, other sha256)."""

    code = "checkpoint_rejected"
    status_code = 422


class CheckpointRefusedError(BackendError):
    """A checkpoint came for an operation that is not running on the sending session (re-dispatched,
    finished, or another host's): it would overwrite the state of the attempt that owns it."""

    code = "checkpoint_refused"
    status_code = 409
