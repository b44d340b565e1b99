"""HttpHostClient over httpx.MockTransport: signed requests, parsed answers, errors by what the caller can do."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from backend.adapters.host_client import HostRetryPolicy, HostTimeouts, HttpHostClient
from backend.errors import HostRejectedError, HostUnavailableError
from shared.contracts.host import MODEL_SHA256_HEADER, StartSession
from shared.contracts.signing import ID_HEADER, sign_response, verify_request
from shared.contracts.training import TrainingRequest

pytestmark = pytest.mark.anyio

HOST = "http://gpu-box:5002"
SECRET = "client-secret"
NOW = datetime(2025, 1, 5, tzinfo=UTC).isoformat()


async def _no_wait(_: float) -> None:
    return None


def _client(handler: Callable[[httpx.Request], httpx.Response], attempts: int = 3) -> HttpHostClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpHostClient(
        http, [SECRET], timeouts=HostTimeouts(), policy=HostRetryPolicy(attempts=attempts, sleep=_no_wait)
    )


def _session(status: str = "running") -> dict[str, object]:
    return {
        "session_id": "hs_1",
        "operation_id": "op_1",
        "status": status,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _command() -> StartSession:
    request = TrainingRequest(workload="strategy", strategy_yaml="name: x", symbols=["A"], timeframes=["1h"])
    return StartSession(operation_id="op_1", request=request, callback_url="http://backend/cb")


def signed_answer(request: httpx.Request, content: bytes, *, secret: str = SECRET) -> httpx.Response:
    """What a host answers with a result: the body, its sha256 and a signature bound to ``request``."""
    sha256 = hashlib.sha256(content).hexdigest()
    target = request.url.raw_path.decode()
    headers = sign_response(secret, request.headers[ID_HEADER], request.method, target, sha256)
    return httpx.Response(200, content=content, headers={MODEL_SHA256_HEADER: sha256, **headers})


async def test_every_request_is_signed_over_its_method_path_and_exact_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        verify_request([SECRET], dict(request.headers), "POST", "/training/start", request.content)
        return httpx.Response(202, json=_session())

    view = await _client(handler).start(HOST, _command())
    assert view.session_id == "hs_1"
    assert seen[0].url == "http://gpu-box:5002/training/start"
    assert json.loads(seen[0].content)["operation_id"] == "op_1"


async def test_a_refused_connection_is_retryable_and_retried_by_the_policy() -> None:
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(HostUnavailableError, match="did not answer"):
        await _client(handler, attempts=3).status(HOST, "hs_1")
    assert len(attempts) == 3


async def test_a_transient_503_is_retried_until_the_host_answers() -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "1"}), httpx.Response(200, json=_session())])
    view = await _client(lambda _: next(answers)).status(HOST, "hs_1")
    assert view.status.value == "running"


async def test_at_capacity_is_retryable_with_the_hosts_retry_after() -> None:
    body = {"error": {"code": "host_at_capacity", "message": "every slot is taken", "details": {}}}
    client = _client(lambda _: httpx.Response(503, json=body, headers={"Retry-After": "5"}), attempts=1)
    with pytest.raises(HostUnavailableError) as caught:
        await client.start(HOST, _command())
    assert caught.value.retry_after_s == 5.0
    assert "every slot is taken" in caught.value.message


@pytest.mark.parametrize("status", [401, 404, 409])
async def test_a_4xx_is_a_rejection_and_not_retried(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"error": {"code": "x", "message": "no", "details": {}}})

    with pytest.raises(HostRejectedError) as caught:
        await _client(handler).stop(HOST, "hs_1")
    assert caught.value.details["status"] == status
    assert len(calls) == 1


async def test_an_answer_of_the_wrong_shape_is_a_rejection_naming_the_version_mismatch() -> None:
    with pytest.raises(HostRejectedError, match="same modelyard version"):
        await _client(lambda _: httpx.Response(200, json={"nope": 1})).health(HOST)


async def test_health_is_not_retried_and_uses_the_short_timeout() -> None:
    timeouts: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(HostUnavailableError):
        await _client(handler).health(HOST)
    assert len(timeouts) == 1
    assert timeouts[0] == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


async def test_a_referenced_model_is_streamed_to_a_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8192
    client = _client(lambda r: signed_answer(r, data))
    target = tmp_path / "model.pt"
    sha256 = await client.download_model(HOST, "/training/result/hs_1/model", target, max_bytes=len(data))
    assert target.read_bytes() == data
    assert sha256 == hashlib.sha256(data).hexdigest()  # hashed as it streamed: no second read needed


async def test_a_referenced_model_longer_than_announced_is_refused(tmp_path: Path) -> None:
    client = _client(lambda r: signed_answer(r, b"x" * 5000))
    with pytest.raises(HostRejectedError, match="exceeds"):
        await client.download_model(HOST, "/m", tmp_path / "m.pt", max_bytes=4000)


async def test_a_result_larger_than_the_limit_is_refused() -> None:
    client = _client(lambda r: signed_answer(r, b"{" * 5000))
    with pytest.raises(HostRejectedError, match="exceeds"):
        await client.result(HOST, "hs_1", max_bytes=1000)


async def test_a_pulled_result_is_returned_when_the_host_signed_it_for_this_request() -> None:
    body = b'{"operation_id": "op_1"}'
    assert await _client(lambda r: signed_answer(r, body)).result(HOST, "hs_1", max_bytes=1000) == body


def _tampered(request: httpx.Request) -> httpx.Response:
    answer = signed_answer(request, b'{"accuracy": 0.5}')
    return httpx.Response(200, content=b'{"accuracy": 0.9}', headers=answer.headers)


def _signed_for_another_request(request: httpx.Request) -> httpx.Response:
    answer = signed_answer(request, b"{}")
    return httpx.Response(200, content=b"{}", headers={**answer.headers, ID_HEADER: "msg_other"})


def _unsigned(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"{}")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_tampered, "bad signature"),
        (lambda r: signed_answer(r, b"{}", secret="not-the-secret"), "bad signature"),
        (_signed_for_another_request, "not the id of the request"),
        (_unsigned, "missing header modelyard-response-signature"),
    ],
    ids=["tampered body", "wrong secret", "another request's answer", "old host: unsigned"],
)
async def test_a_pulled_result_without_a_valid_signature_is_refused(
    answer: Callable[[httpx.Request], httpx.Response], reason: str
) -> None:
    with pytest.raises(HostRejectedError, match=reason):
        await _client(answer).result(HOST, "hs_1", max_bytes=1000)


async def test_a_streamed_model_unlike_its_signed_sha256_is_refused(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        signed = signed_answer(request, b"the weights")
        return httpx.Response(200, content=b"other weights", headers=signed.headers)

    with pytest.raises(HostRejectedError, match=r"not the .* its signed answer declared"):
        await _client(answer).download_model(
            HOST, "/training/result/hs_1/model", tmp_path / "m", max_bytes=99
        )


async def test_a_retried_request_is_signed_afresh_with_a_new_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503) if len(seen) == 1 else httpx.Response(200, json=_session())

    await _client(handler).stop(HOST, "hs_1")
    assert len({r.headers[ID_HEADER] for r in seen}) == 2
    for request in seen:
        verify_request([SECRET], dict(request.headers), "POST", "/training/stop/hs_1", b"")
