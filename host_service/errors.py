"""The host service's errors, grouped by what the caller can do; mapped to HTTP in ``api.errors`` only."""

from __future__ import annotations

from typing import Any

from shared.contracts.errors import CodedError


class HostServiceError(CodedError):
    """Root of every error the host service raises on purpose; ``code`` is stable on the wire."""

    code = "host_error"


class SessionNotFoundError(HostServiceError):
    code = "session_not_found"


class SessionConflictError(HostServiceError):
    """The operation already has a live session started with a different request."""

    code = "session_conflict"


class CapacityExhaustedError(HostServiceError):
    """Every slot is taken; retry after ``retry_after_s``."""

    code = "host_at_capacity"

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class RequestRefusedError(HostServiceError):
    """The request cannot run on this host as it is (4xx); sending it again unchanged cannot help."""


class CommandNotFoundError(RequestRefusedError):
    """The request names a command this host's commands folder does not have."""

    code = "command_not_found"


class InvalidConfigError(RequestRefusedError):
    """The request does not fit this host's copy of its command (params, dataset, program)."""

    code = "invalid_config"


class IllegalTransitionError(HostServiceError):
    code = "illegal_transition"


class ResultNotAvailableError(HostServiceError):
    """The session has no result (not finished, failed, or already acknowledged and deleted)."""

    code = "result_not_available"


class DatasetError(HostServiceError):
    """A dataset could not be downloaded or did not match its sha256."""

    code = "dataset_unavailable"


class CallbackError(HostServiceError):
    """The backend did not accept a result callback."""

    code = "callback_failed"


class CallbackRetryableError(CallbackError):
    """Transport error, 5xx, 408 or 429: worth another attempt (after ``retry_after_s`` if given)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class CallbackRejectedError(CallbackError):
    """Any other 4xx: the backend refused this result; retrying the same bytes cannot help."""
