"""Property-based run over every operation of the OpenAPI with an admin token: no 5xx, and every 4xx
answers with the shared error body.

Schemathesis generates the requests from ``app.openapi()``; they are sent in-process (ASGITransport)
to an app whose lifespan runs on a portal thread, since Hypothesis drives a synchronous test.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode

from backend.components import Components
from backend.domain.tokens import TokenScope
from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app

pytestmark = pytest.mark.slow

#: Examples per operation and mode (schema-conforming, then schema-violating): about 25 s on two cores.
EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 20}
#: The SSE stream of an existing operation only ends with the operation; it is covered by its own tests.
STREAMING = {("GET", "/api/v1/operations/{operation_id}/events")}
#: Host-facing routes check a signature, not a token: a bearer token alone must be refused cleanly.
HOST_SIGNED = {
    ("POST", "/api/v1/callbacks/host-result"),
    ("GET", "/api/v1/data/files/{name}/download"),
    ("GET", "/api/v1/data/{symbol}/{timeframe}/download"),
}


@dataclass
class Served:
    app: FastAPI
    portal: BlockingPortal
    client: httpx.AsyncClient
    token: str

    def send(self, case: Case) -> httpx.Response:
        request = _httpx_kwargs(case.as_transport_kwargs(base_url="http://testserver"))
        request["headers"]["Authorization"] = f"Bearer {self.token}"
        return self.portal.call(functools.partial(self.client.request, **request))


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis speaks ``requests``; httpx wants form fields as text and no ``data=None``."""
    request = {key: kwargs[key] for key in ("method", "url", "headers", "params") if key in kwargs}
    request["headers"] = {k: v for k, v in request["headers"].items() if k != "X-Schemathesis-TestCaseId"}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    if kwargs.get("files"):
        request["files"] = [
            (name, (filename, value if isinstance(value, str | bytes) else str(value)))
            for name, (filename, value, *_) in kwargs["files"]
        ]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content" if isinstance(data, str | bytes) else "data"] = data
    return request


@pytest.fixture
def served(settings: Settings, fakes: Fakes) -> Iterator[Served]:
    # A shared secret makes the host-signed routes demand a signature, even from loopback.
    settings.shared_secret = "s3cret-shared-with-hosts"
    with start_blocking_portal(backend="asyncio") as portal:
        app, lifespan = portal.call(start_app, settings, fakes)
        components: Components = app.state.components
        token = components.tokens.create("fuzz-admin", TokenScope.ADMIN)[1]
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        try:
            yield Served(app, portal, client, token)
        finally:
            portal.call(client.aclose)
            portal.call(lifespan.__aexit__, None, None, None)


def _is_documented_503(key: tuple[str, str], response: httpx.Response) -> bool:
    """A training that asks for a GPU where none is (this fake world has none) is answered 503
    ``execution_mode_unavailable``, "retry later" by the documented contract (docs/api.md), not a fault."""
    if key != ("POST", "/api/v1/trainings") or response.status_code != 503:
        return False
    _assert_error_body(response, "documented 503")
    return bool(response.json()["error"]["code"] == "execution_mode_unavailable")


def _assert_error_body(response: httpx.Response, where: str) -> None:
    body = response.json()
    assert set(body) == {"error"}, (where, body)
    assert set(body["error"]) == {"code", "message", "details"}, (where, body)
    assert isinstance(body["error"]["details"], dict), (where, body)


def _fuzz(served: Served, operation: Any, mode: GenerationMode, seen: dict[tuple[str, str], int]) -> None:
    """Run one operation's examples; Hypothesis shrinks a failing one before it is raised."""
    key = (operation.method.upper(), operation.path)

    @hypothesis.settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def check(case: Case) -> None:
        response = served.send(case)
        where = f"{key[0]} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        seen[key] = seen.get(key, 0) + 1
        assert response.status_code < 500 or _is_documented_503(key, response), where
        if key in HOST_SIGNED:
            # An unmatched path (a decoded "/" in a segment) is a 404 before the signature check.
            assert response.status_code in (401, 404), where
        if response.status_code >= 400:
            _assert_error_body(response, where)

    check()


def test_no_operation_answers_5xx_and_every_4xx_has_the_error_body(served: Served) -> None:
    schema = schemathesis.openapi.from_dict(served.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    seen: dict[tuple[str, str], int] = {}
    failures: list[str] = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in STREAMING:
            continue
        for mode in EXAMPLES:
            try:
                _fuzz(served, operation, mode, seen)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters or body)
            except Exception as exc:  # every operation runs; all failures are reported together
                failures.append(f"{mode} {operation.method.upper()} {operation.path}: {exc!r}")
    assert not failures, "\n".join(failures)
    assert set(seen) == {(op.method.upper(), op.path) for op in operations} - STREAMING
