"""HttpHostClient: the HostClient port over httpx, one method per host endpoint, every request signed
over its method, path with query and body; the answers that carry a result must be signed by the host.

Timeouts are values given where the client is built (:class:`HostTimeouts`): health checks use the
short one, so a dead host costs a background check two seconds and a request nothing. Transport
errors, 5xx and 503-at-capacity become :class:`HostUnavailableError` (retryable); other 4xx and
unreadable answers :class:`HostRejectedError`. Idempotent calls are retried by an injected policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from backend.errors import HostRejectedError, HostUnavailableError
from shared.contracts.host import MODEL_SHA256_HEADER, HostHealth, SessionList, SessionView, StartSession
from shared.contracts.signing import ID_HEADER, SignatureError, sign_request, verify_response

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class HostTimeouts:
    connect_s: float = 2.0
    health_s: float = 2.0
    request_s: float = 10.0
    transfer_s: float = 300.0

    def health(self) -> httpx.Timeout:
        return httpx.Timeout(self.health_s, connect=min(self.connect_s, self.health_s))

    def request(self) -> httpx.Timeout:
        return httpx.Timeout(self.request_s, connect=self.connect_s)

    def transfer(self) -> httpx.Timeout:
        return httpx.Timeout(self.transfer_s, connect=self.connect_s)


@dataclass(frozen=True)
class HostRetryPolicy:
    """Retries of idempotent host calls on HostUnavailableError; tests inject ``sleep`` that never waits."""

    attempts: int = 2
    initial_wait_s: float = 0.2
    max_wait_s: float = 1.0
    sleep: Sleep = asyncio.sleep

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.initial_wait_s, max=self.max_wait_s),
            retry=retry_if_exception_type(HostUnavailableError),
            sleep=self.sleep,
            reraise=True,
        )


class HttpHostClient:
    """``client`` is owned by the caller (closed in the backend's lifespan)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: Sequence[str],
        *,
        timeouts: HostTimeouts,
        policy: HostRetryPolicy | None = None,
    ) -> None:
        self._client = client
        self._secrets = list(secrets)
        self._timeouts = timeouts
        self._policy = policy or HostRetryPolicy()

    async def health(self, host: str) -> HostHealth:
        # No retry: the registry checks again on its own schedule.
        response = await self._send("GET", host, "/health", timeout=self._timeouts.health())
        return _parse(HostHealth, response, host)

    async def start(self, host: str, command: StartSession) -> SessionView:
        # Safe to retry: the host answers a repeated start of the same operation with the same session.
        body = command.model_dump_json().encode()
        response = await self._retrying("POST", host, "/training/start", body=body)
        return _parse(SessionView, response, host)

    async def status(self, host: str, session_id: str) -> SessionView:
        response = await self._retrying("GET", host, f"/training/status/{session_id}")
        return _parse(SessionView, response, host)

    async def stop(self, host: str, session_id: str) -> SessionView:
        response = await self._retrying("POST", host, f"/training/stop/{session_id}")
        return _parse(SessionView, response, host)

    async def acknowledge(self, host: str, session_id: str) -> SessionView:
        response = await self._retrying("POST", host, f"/training/result/{session_id}/ack")
        return _parse(SessionView, response, host)

    async def sessions(self, host: str) -> SessionList:
        response = await self._retrying("GET", host, "/training/sessions")
        return _parse(SessionList, response, host)

    async def result(self, host: str, session_id: str, *, max_bytes: int) -> bytes:
        """The result payload's raw bytes, returned only when the host's signature of them checks out."""
        url = _join(host, f"/training/result/{session_id}")
        async for attempt in self._policy.retrying():
            with attempt:
                return await self._stream_bytes(host, url, max_bytes)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def download_model(self, host: str, url: str, destination: Path, *, max_bytes: int) -> str:
        """Stream into ``destination`` as the bytes arrive: memory stays bounded whatever the model size.

        The answer's signature covers its declared sha256 (checked before a byte is written), and the
        bytes are checked against that sha256 once streamed. Returns their sha256."""
        target = _join(host, url)
        try:
            async with self._signed_stream(target) as (request, response):
                await _raise_for_status(response, host)
                declared = response.headers.get(MODEL_SHA256_HEADER, "")
                self._check_answer(host, request, response, declared)
                digest = hashlib.sha256()
                written = 0
                with destination.open("wb") as sink:
                    # As the transport reads them (64 KiB): re-chunking to a fixed size would copy
                    # every byte once more, for nothing (the file is buffered anyway).
                    async for chunk in response.aiter_bytes():
                        written += len(chunk)
                        if written > max_bytes:
                            raise HostRejectedError(
                                f"model from {target} exceeds {max_bytes} bytes (MODELYARD_MAX_MODEL_BYTES)",
                                host=host,
                                limit=max_bytes,
                            )
                        digest.update(chunk)
                        sink.write(chunk)
        except httpx.TransportError as exc:
            raise HostUnavailableError(f"downloading {target} failed: {exc!r}", host=host) from exc
        if self._secrets and digest.hexdigest() != declared:
            raise HostRejectedError(
                f"model from {target} has sha256 {digest.hexdigest()}, not the {declared} its signed "
                "answer declared",
                host=host,
            )
        return digest.hexdigest()

    # --- transport ---------------------------------------------------------------------------

    def _signed(self, request: httpx.Request) -> httpx.Request:
        """``request`` with headers that sign its method, path with query and body (a fresh id each
        time, so a retry is a new message the host has not seen)."""
        if self._secrets:
            target = request.url.raw_path.decode("ascii")
            request.headers.update(sign_request(self._secrets, request.method, target, request.content))
        return request

    def _check_answer(self, host: str, request: httpx.Request, response: httpx.Response, sha256: str) -> None:
        """Refuse an answer that carries a result unless the host signed it for this very request."""
        if not self._secrets:
            return
        try:
            verify_response(
                self._secrets,
                response.headers,
                request.headers[ID_HEADER],
                request.method,
                request.url.raw_path.decode("ascii"),
                sha256,
            )
        except SignatureError as exc:
            logger.warning("refused the answer of %s to %s %s: %s", host, request.method, request.url, exc)
            raise HostRejectedError(
                f"host {host} answered {request.method} {request.url.path} without a valid signature: "
                f"{exc.reason}",
                host=host,
                reason=exc.reason,
            ) from exc

    async def _retrying(self, method: str, host: str, path: str, *, body: bytes = b"") -> httpx.Response:
        async for attempt in self._policy.retrying():
            with attempt:
                return await self._send(method, host, path, body=body, timeout=self._timeouts.request())
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _send(
        self, method: str, host: str, path: str, *, timeout: httpx.Timeout, body: bytes = b""
    ) -> httpx.Response:
        # Signed afresh per attempt, so a retry never carries a stale timestamp or a used id.
        headers = {"content-type": "application/json"} if body else {}
        url = _join(host, path)
        request = self._client.build_request(method, url, content=body, headers=headers, timeout=timeout)
        try:
            response = await self._client.send(self._signed(request))
        except httpx.TransportError as exc:
            raise HostUnavailableError(
                f"host {host} did not answer {method} {path}: {exc!r}", host=host
            ) from exc
        await _raise_for_status(response, host)
        return response

    @asynccontextmanager
    async def _signed_stream(self, url: str) -> AsyncIterator[tuple[httpx.Request, httpx.Response]]:
        request = self._client.build_request("GET", url, timeout=self._timeouts.transfer())
        response = await self._client.send(self._signed(request), stream=True)
        try:
            yield request, response
        finally:
            await response.aclose()

    async def _stream_bytes(self, host: str, url: str, max_bytes: int) -> bytes:
        try:
            async with self._signed_stream(url) as (request, response):
                await _raise_for_status(response, host)
                body = bytearray()
                async for chunk in response.aiter_bytes(_CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise HostRejectedError(
                            f"result from {url} exceeds {max_bytes} bytes (MODELYARD_CALLBACK_MAX_BYTES)",
                            host=host,
                            limit=max_bytes,
                        )
                self._check_answer(host, request, response, hashlib.sha256(body).hexdigest())
                return bytes(body)
        except httpx.TransportError as exc:
            raise HostUnavailableError(f"host {host} did not send {url}: {exc!r}", host=host) from exc


def _join(host: str, path: str) -> str:
    return urljoin(host.rstrip("/") + "/", path.lstrip("/")) if not path.startswith("http") else path


async def _raise_for_status(response: httpx.Response, host: str) -> None:
    status = response.status_code
    if status < 300:
        return
    await response.aread()
    error = _error_of(response)
    message = f"host {host} answered {response.request.method} {response.request.url.path} with HTTP {status}"
    if error.get("message"):
        message += f": {error['message']}"
    details = {"host": host, "status": status, "host_error": error.get("code")}
    if status >= 500 or status in (408, 429):
        retry_after = response.headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise HostUnavailableError(message, retry_after_s=seconds, **details)
    raise HostRejectedError(message, **details)


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:300]}
    error = body.get("error") if isinstance(body, dict) else None
    return dict(error) if isinstance(error, dict) else {"message": str(body)[:300]}


def _parse(model: type[Model], response: httpx.Response, host: str) -> Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise HostRejectedError(
            f"host {host} sent a {model.__name__} this backend cannot read ({exc.error_count()} problem(s): "
            f"{exc.errors()[0]['msg']}); are backend and host the same modelyard version?",
            host=host,
        ) from exc
