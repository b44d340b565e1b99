"""BackendClient: the CLI's typed client of the backend's REST API, one method per endpoint used.

Every call has an explicit timeout set where the client is built. Transport failures are never
swallowed: a refused connection becomes :class:`BackendUnreachableError`, a non-2xx answer becomes
:class:`BackendApiError` carrying the server's ``{"error": {"code", "message", "details"}}`` body.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from backend.cli.event_stream import read_events
from shared.contracts.aliases import AliasChangeView, AliasList
from shared.contracts.api import DataPreview, DatasetView, ModelDetail, ModelSummary
from shared.contracts.operations import (
    OperationList,
    OperationLogs,
    OperationView,
    ProjectList,
    StartTrainingResponse,
)
from shared.contracts.sweeps import StartSweepResponse, SweepList, SweepView
from shared.contracts.tokens import CreatedToken, TokenList, TokenView

M = TypeVar("M", bound=BaseModel)

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: Short connect timeout so a dead server is reported at once; reads allow a busy backend some slack.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=3.0)
#: Model archives can be large: no overall read deadline per chunk beyond this.
DOWNLOAD_TIMEOUT = httpx.Timeout(120.0, connect=3.0)
#: The event stream is silent between events except for heartbeat comments (the server's
#: MODELYARD_SSE_HEARTBEAT_S, 15 s by default): a read timeout well above that means "the stream is dead".
EVENTS_TIMEOUT = httpx.Timeout(10.0, connect=3.0, read=60.0)


class BackendClientError(Exception):
    """Root of the errors the CLI's backend client raises."""


class BackendUnreachableError(BackendClientError):
    """Nothing answered at the server URL (refused, unknown host, connect timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the modelyard server at {url}: is it running? (make run)")
        self.url = url
        self.reason = reason


class ServerUrlError(BackendClientError, ValueError):
    """The server URL is not an ``http(s)://host[:port]`` URL."""


class EventStreamError(BackendClientError):
    """The operation's event stream broke, timed out or was not an event stream: reconnect or poll."""


class BackendApiError(BackendClientError):
    """The server answered with an error status; ``code``/``message``/``details`` come from its body."""

    def __init__(self, status_code: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class OperationQuery:
    """The filters of ``GET /api/v1/operations`` beyond status and paging; unset ones are not sent."""

    project: str | None = None
    tags: tuple[str, ...] = ()
    workload: str | None = None
    active_only: bool = False

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.project:
            params["project"] = self.project
        if self.tags:
            params["tag"] = list(self.tags)
        if self.workload:
            params["workload"] = self.workload
        if self.active_only:
            params["active_only"] = "true"
        return params


class BackendClient:
    """Talks to one backend at ``base_url``. ``transport`` lets tests script the answers."""

    def __init__(
        self,
        base_url: str = DEFAULT_SERVER,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        token: str | None = None,
    ) -> None:
        self.base_url = server_url(base_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=timeout, headers=headers
        )
        self.has_token = bool(token)

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- trainings and operations ----------------------------------------------------------------

    def get_json(self, path: str) -> Any:
        """The JSON answer of a GET on ``path`` (an ``/api/v1/...`` path; segments already quoted)."""
        return _json(self._request("GET", path))

    def start_training(self, body: dict[str, Any]) -> StartTrainingResponse:
        return _parse(StartTrainingResponse, self._request("POST", "/api/v1/trainings", json=body))

    def list_operations(
        self, *, status: str | None = None, limit: int = 20, where: OperationQuery | None = None
    ) -> OperationList:
        params: dict[str, Any] = {"limit": limit, **(where.params() if where else {})}
        if status:
            params["status"] = status
        return _parse(OperationList, self._request("GET", "/api/v1/operations", params=params))

    def list_projects(self) -> ProjectList:
        return _parse(ProjectList, self._request("GET", "/api/v1/projects"))

    def get_operation(self, operation_id: str) -> OperationView:
        return _parse(OperationView, self._request("GET", f"/api/v1/operations/{_seg(operation_id)}"))

    def cancel_operation(self, operation_id: str) -> OperationView | None:
        """Ask the server to cancel; returns the operation as it answered (``None`` if it sent no body)."""
        answer = self._request("POST", f"/api/v1/operations/{_seg(operation_id)}/cancel")
        if not answer.content:
            return None
        return _parse(OperationView, answer)

    def retry_operation(self, operation_id: str, *, from_checkpoint: bool = True) -> OperationView:
        """``POST /api/v1/operations/{id}/retry``: run a failed, cancelled or interrupted one again."""
        path = f"/api/v1/operations/{_seg(operation_id)}/retry"
        return _parse(OperationView, self._request("POST", path, json={"from_checkpoint": from_checkpoint}))

    def operation_logs(self, operation_id: str, *, offset: int = 0, limit: int = 1000) -> OperationLogs:
        path = f"/api/v1/operations/{_seg(operation_id)}/logs"
        params = {"offset": offset, "limit": limit}
        return _parse(OperationLogs, self._request("GET", path, params=params))

    def operation_events(self, operation_id: str) -> Generator[OperationView, None, None]:
        """``GET /api/v1/operations/{id}/events``: the operation as each Server-Sent Event carries it,
        starting with its current state, until the server ends the stream (the operation ended).

        A broken, silent (no heartbeat within the read timeout) or non-SSE answer raises
        :class:`EventStreamError`; an error status raises :class:`BackendApiError` as usual."""
        path = f"/api/v1/operations/{_seg(operation_id)}/events"
        headers = {"Accept": "text/event-stream"}
        with self._stream("GET", path, timeout=EVENTS_TIMEOUT, headers=headers) as response:
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise EventStreamError(f"{path} answered {kind or 'no content type'}, not an event stream")
            try:
                for event in read_events(response.iter_lines()):
                    yield _parse_data(OperationView, event.data, path)
            except httpx.TransportError as exc:
                raise EventStreamError(f"the event stream of {operation_id} broke: {exc!r}") from exc

    # --- models ----------------------------------------------------------------------------------

    def list_models(self) -> list[ModelSummary]:
        data = _json(self._request("GET", "/api/v1/models"))
        items = data.get("items", []) if isinstance(data, dict) else data
        try:
            return [ModelSummary.model_validate(item) for item in items]
        except (ValidationError, TypeError) as exc:
            raise _unexpected("/api/v1/models", exc) from exc

    def model_detail(self, strategy: str, name: str) -> ModelDetail:
        return _parse(ModelDetail, self._request("GET", f"/api/v1/models/{_seg(strategy)}/{_seg(name)}"))

    def download_model(self, strategy: str, name: str, version: int | str, out: BinaryIO) -> int:
        """Stream the archive of a version (a number or an alias) into ``out``; the bytes written."""
        return self._download(
            f"/api/v1/models/{_seg(strategy)}/{_seg(name)}/versions/{_seg(str(version))}/download", out
        )

    def export_model_onnx(self, strategy: str, name: str, version: int | str, out: BinaryIO) -> int:
        """Stream the version's ONNX graph into ``out``; returns the number of bytes written."""
        return self._download(
            f"/api/v1/models/{_seg(strategy)}/{_seg(name)}/versions/{_seg(str(version))}/onnx", out
        )

    def _download(self, path: str, out: BinaryIO) -> int:
        written = 0
        with self._stream("GET", path) as response:
            for chunk in response.iter_bytes():
                out.write(chunk)
                written += len(chunk)
        return written

    def delete_model_version(self, strategy: str, name: str, version: int) -> None:
        self._request("DELETE", f"/api/v1/models/{_seg(strategy)}/{_seg(name)}/versions/{version}")

    # --- data ------------------------------------------------------------------------------------

    def upload_data(self, path: Path, form: dict[str, str]) -> DatasetView:
        """Upload the file at ``path`` (read in blocks as it is sent) with the form fields ``form``."""
        with path.open("rb") as source:
            files = {"file": (path.name, source)}
            response = self._request("POST", "/api/v1/data", files=files, data=form, timeout=DOWNLOAD_TIMEOUT)
        return _parse(DatasetView, response)

    def preview_data(self, name: str) -> DataPreview:
        return _parse(DataPreview, self._request("GET", f"/api/v1/data/{_seg(name)}/preview"))

    # --- aliases ---------------------------------------------------------------------------------

    def model_aliases(self, strategy: str, name: str) -> AliasList:
        return _parse(
            AliasList, self._request("GET", f"/api/v1/models/{_seg(strategy)}/{_seg(name)}/aliases")
        )

    def set_model_alias(self, strategy: str, name: str, alias: str, version: int) -> AliasChangeView:
        path = f"/api/v1/models/{_seg(strategy)}/{_seg(name)}/aliases/{_seg(alias)}"
        return _parse(AliasChangeView, self._request("PUT", path, json={"version": version}))

    def remove_model_alias(self, strategy: str, name: str, alias: str) -> None:
        self._request("DELETE", f"/api/v1/models/{_seg(strategy)}/{_seg(name)}/aliases/{_seg(alias)}")

    # --- sweeps ----------------------------------------------------------------------------------

    def start_sweep(self, body: dict[str, Any]) -> StartSweepResponse:
        return _parse(StartSweepResponse, self._request("POST", "/api/v1/sweeps", json=body))

    def get_sweep(self, sweep_id: str) -> SweepView:
        return _parse(SweepView, self._request("GET", f"/api/v1/sweeps/{_seg(sweep_id)}"))

    def list_sweeps(self) -> SweepList:
        return _parse(SweepList, self._request("GET", "/api/v1/sweeps"))

    def cancel_sweep(self, sweep_id: str) -> SweepView:
        return _parse(SweepView, self._request("POST", f"/api/v1/sweeps/{_seg(sweep_id)}/cancel"))

    # --- tokens (admin scope) ---------------------------------------------------------------------

    def list_tokens(self) -> TokenList:
        return _parse(TokenList, self._request("GET", "/api/v1/tokens"))

    def create_token(self, name: str, scope: str, expires_in: str | None) -> CreatedToken:
        body = {"name": name, "scope": scope, "expires_in": expires_in}
        return _parse(CreatedToken, self._request("POST", "/api/v1/tokens", json=body))

    def revoke_token(self, name: str) -> TokenView:
        return _parse(TokenView, self._request("DELETE", f"/api/v1/tokens/{_seg(name)}"))

    # --- transport -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BackendUnreachableError(self.base_url, str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise BackendApiError(0, "timeout", f"{method} {path} timed out: {exc}", {}) from exc
        _raise_for_error(response)
        return response

    @contextmanager
    def _stream(
        self,
        method: str,
        path: str,
        *,
        timeout: httpx.Timeout = DOWNLOAD_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        try:
            with self._http.stream(method, path, timeout=timeout, headers=headers) as response:
                if response.is_error:
                    response.read()
                    _raise_for_error(response)
                yield response
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BackendUnreachableError(self.base_url, str(exc)) from exc


def server_url(url: str) -> str:
    """``url`` without its trailing slash, if it is an ``http(s)://host[:port][/prefix]`` URL; else a
    :class:`ServerUrlError` naming ``--server`` / ``MODELYARD_SERVER`` with an example."""
    cleaned = url.strip().rstrip("/")
    if not _is_http_url(cleaned):
        raise ServerUrlError(
            f"{url!r} is not a server URL: give --server (or MODELYARD_SERVER) as http://HOST:PORT, "
            f"e.g. {DEFAULT_SERVER}"
        )
    return cleaned


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unparsable port or bracketed host
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and (port is None or port > 0)
        and not parts.query
        and not parts.fragment
    )


def _raise_for_error(response: httpx.Response) -> None:
    if not response.is_error:
        return
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict) or "message" not in error:
        text = response.text.strip()[:300] or response.reason_phrase
        raise BackendApiError(response.status_code, f"http_{response.status_code}", text, {})
    details = error.get("details")
    raise BackendApiError(
        response.status_code,
        str(error.get("code", f"http_{response.status_code}")),
        str(error["message"]),
        details if isinstance(details, dict) else {},
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise _unexpected(str(response.url), exc) from exc


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate(_json(response))
    except ValidationError as exc:
        raise _unexpected(str(response.url), exc) from exc


def _parse_data(model: type[M], data: str, where: str) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise EventStreamError(f"unexpected event from {where}: {exc}") from exc


def _unexpected(where: str, exc: Exception) -> BackendApiError:
    return BackendApiError(0, "unexpected_response", f"unexpected answer from {where}: {exc}", {})


def _seg(value: str) -> str:
    """One URL path segment, escaped so a name cannot reach another route."""
    return quote(value, safe="")
