"""The backend over HTTP: signed dataset downloads, signed result callbacks with a retry policy, and
signed checkpoint uploads (one attempt each: the next checkpoint comes soon)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from host_service.errors import CallbackRejectedError, CallbackRetryableError, DatasetError
from shared.contracts.signing import sign, sign_request

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class CallbackRetryPolicy:
    """Exponential backoff with jitter, ``attempts`` in all; a ``Retry-After`` (capped) wins over it.

    ``sleep`` is injectable so tests run without waiting and can see every wait asked for.
    """

    attempts: int = 3
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    max_retry_after_s: float = 300.0
    sleep: Sleep = asyncio.sleep

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(CallbackRetryableError),
            sleep=self.sleep,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, CallbackRetryableError) and error.retry_after_s is not None:
            return min(error.retry_after_s, self.max_retry_after_s)
        backoff = wait_exponential_jitter(
            initial=self.initial_wait_s, max=self.max_wait_s, jitter=self.initial_wait_s
        )
        return float(backoff(state))


class HttpBackendClient:
    """``client`` (callbacks) and ``download_client`` (datasets; ``client`` when None) carry their
    timeouts; ``secrets`` empty means unsigned (loopback development only)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: Sequence[str],
        policy: CallbackRetryPolicy,
        *,
        download_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client
        self._downloads = download_client or client
        self._secrets = list(secrets)
        self._policy = policy

    async def download(self, url: str, destination: Path) -> str:
        digest = hashlib.sha256()
        request = self._downloads.build_request("GET", url)
        if self._secrets:
            signed_target = request.url.raw_path.decode("ascii")
            request.headers.update(sign_request(self._secrets, "GET", signed_target))
        try:
            async with _streamed(self._downloads, request) as response:
                if response.status_code != 200:
                    raise DatasetError(
                        f"downloading {url} failed with HTTP {response.status_code}: "
                        f"{(await response.aread())[:300]!r}",
                        url=url,
                        status=response.status_code,
                    )
                with destination.open("wb") as target:
                    async for chunk in response.aiter_bytes(1 << 20):
                        digest.update(chunk)
                        target.write(chunk)
        except httpx.HTTPError as exc:
            raise DatasetError(f"downloading {url} failed: {exc!r}", url=url) from exc
        return digest.hexdigest()

    async def deliver(self, callback_url: str, body: bytes) -> None:
        async for attempt in self._policy.retrying():
            with attempt:
                number = attempt.retry_state.attempt_number
                await self._post_once(callback_url, body, number)

    async def upload(self, url: str, source: BinaryIO, *, size: int, query: dict[str, str]) -> None:
        headers = {"content-type": "application/octet-stream", "content-length": str(size)}
        request = self._downloads.build_request(
            "PUT", url, params=query, headers=headers, content=_chunks(source)
        )
        if self._secrets:
            signed_target = request.url.raw_path.decode("ascii")
            request.headers.update(sign_request(self._secrets, "PUT", signed_target))
        try:
            response = await self._downloads.send(request)
        except httpx.TransportError as exc:
            raise CallbackRetryableError(f"upload to {url} failed: {exc!r}", url=url) from exc
        _check_answer(url, response, "upload")

    async def _post_once(self, url: str, body: bytes, number: int) -> None:
        # Each attempt is a new message (new webhook-id, new timestamp): the backend accepts an id once,
        # and answers a result it already stored as a duplicate, so a retry never stores a second copy.
        signed = sign(self._secrets, body) if self._secrets else {}
        headers = {"content-type": "application/json", **signed}
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            logger.warning("callback attempt %d to %s failed: %r", number, url, exc)
            raise CallbackRetryableError(f"callback to {url} failed: {exc!r}", url=url) from exc
        _check_answer(url, response, f"callback attempt {number}")


def _check_answer(url: str, response: httpx.Response, what: str) -> None:
    """Return on a 2xx; else CallbackRetryableError (5xx, 408, 429) or CallbackRejectedError (4xx)."""
    status = response.status_code
    if status < 300:
        return
    text = response.text[:300]
    logger.warning("%s to %s got HTTP %d: %s", what, url, status, text)
    if status >= 500 or status in _RETRYABLE_4XX:
        raise CallbackRetryableError(
            f"{what} to {url} got HTTP {status}",
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
            url=url,
            status=status,
        )
    raise CallbackRejectedError(
        f"{what} to {url} was rejected with HTTP {status}: {text}", url=url, status=status
    )


async def _chunks(source: BinaryIO) -> AsyncIterator[bytes]:
    while block := source.read(1 << 20):
        yield block


@asynccontextmanager
async def _streamed(client: httpx.AsyncClient, request: httpx.Request) -> AsyncIterator[httpx.Response]:
    response = await client.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
