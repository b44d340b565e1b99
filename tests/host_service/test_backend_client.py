"""The backend client: signed downloads, callbacks retried on 5xx/408/429/transport errors only,
Retry-After honoured, a no-wait policy injected."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from host_service.adapters.backend_client import CallbackRetryPolicy, HttpBackendClient, retry_after_seconds
from host_service.errors import CallbackRejectedError, CallbackRetryableError, DatasetError
from shared.contracts.signing import ID_HEADER, verify, verify_request

pytestmark = pytest.mark.anyio
SECRET = "backend-and-host"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordedSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(handler: Callable[[httpx.Request], httpx.Response], sleep: RecordedSleep) -> HttpBackendClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=5)
    policy = CallbackRetryPolicy(attempts=3, initial_wait_s=1, max_wait_s=4, sleep=sleep)
    return HttpBackendClient(http, [SECRET], policy)


def _scripted(
    *statuses: int, headers: dict[str, str] | None = None
) -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1], headers=headers, text="nope")

    return seen, handler


async def test_download_is_signed_streamed_and_hashed(tmp_path: Path) -> None:
    content = b"timestamp,open\n" * 1000
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        verify_request([SECRET], dict(request.headers), "GET", "/data.csv?v=1", b"")
        return httpx.Response(200, content=content)

    digest = await _client(handler, RecordedSleep()).download("http://backend/data.csv?v=1", tmp_path / "f")
    assert digest == hashlib.sha256(content).hexdigest()
    assert (tmp_path / "f").read_bytes() == content
    assert len(seen) == 1


async def test_download_error_names_the_url_and_status(tmp_path: Path) -> None:
    _, handler = _scripted(404)
    with pytest.raises(DatasetError, match=r"http://backend/x.csv failed with HTTP 404"):
        await _client(handler, RecordedSleep()).download("http://backend/x.csv", tmp_path / "f")


async def test_each_callback_attempt_is_a_new_standard_webhooks_message() -> None:
    seen, handler = _scripted(503, 200)
    await _client(handler, RecordedSleep()).deliver("http://backend/cb", b"{}")
    assert len(seen) == 2
    # A fresh id per attempt: the backend accepts a webhook-id once, and answers a stored result as a
    # duplicate, so a retry after a lost answer still gets through and stores nothing twice.
    assert len({r.headers[ID_HEADER] for r in seen}) == 2
    for request in seen:
        verify([SECRET], dict(request.headers), request.content)


async def test_callback_retries_5xx_with_backoff_then_gives_up_after_the_attempts() -> None:
    sleep = RecordedSleep()
    seen, handler = _scripted(500, 502, 503)
    with pytest.raises(CallbackRetryableError, match="HTTP 503"):
        await _client(handler, sleep).deliver("http://backend/cb", b"{}")
    assert len(seen) == 3
    assert len(sleep.waits) == 2
    assert all(0 < wait <= 4 for wait in sleep.waits)


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
async def test_callback_is_not_retried_on_other_4xx(status: int) -> None:
    seen, handler = _scripted(status)
    with pytest.raises(CallbackRejectedError, match=str(status)):
        await _client(handler, RecordedSleep()).deliver("http://backend/cb", b"{}")
    assert len(seen) == 1


@pytest.mark.parametrize("status", [408, 429])
async def test_callback_is_retried_on_408_and_429(status: int) -> None:
    seen, handler = _scripted(status, 200)
    await _client(handler, RecordedSleep()).deliver("http://backend/cb", b"{}")
    assert len(seen) == 2


async def test_retry_after_header_sets_the_wait() -> None:
    sleep = RecordedSleep()
    _, handler = _scripted(429, 200, headers={"Retry-After": "17"})
    await _client(handler, sleep).deliver("http://backend/cb", b"{}")
    assert sleep.waits == [17.0]


async def test_transport_errors_are_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200)

    await _client(handler, RecordedSleep()).deliver("http://backend/cb", b"{}")
    assert len(calls) == 2


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


async def test_a_checkpoint_upload_is_streamed_signed_over_its_query_and_tried_once(tmp_path: Path) -> None:
    content = b"checkpoint bytes" * 5000
    path = tmp_path / "epoch-000001.ckpt"
    path.write_bytes(content)
    query = {
        "session_id": "hs_1",
        "epoch": "1",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": "80000",
    }
    seen, handler = _scripted(200, 409, 503)
    client = _client(handler, RecordedSleep())
    with path.open("rb") as source:
        await client.upload(
            "http://backend.test/api/v1/callbacks/checkpoints/op_1", source, size=80000, query=query
        )
    [request] = seen
    target = request.url.raw_path.decode()
    assert target.startswith("/api/v1/callbacks/checkpoints/op_1?session_id=hs_1&epoch=1&sha256=")
    verify_request([SECRET], dict(request.headers), "PUT", target, b"")
    assert request.content == content
    assert request.headers["content-length"] == "80000"
    for expected in (CallbackRejectedError, CallbackRetryableError):
        with path.open("rb") as source, pytest.raises(expected):
            await client.upload("http://backend.test/c", source, size=80000, query=query)
    assert len(seen) == 3  # one attempt each: the next checkpoint is the retry
