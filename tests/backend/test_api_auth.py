"""API tokens end to end in-process: every route's need of a token, scopes, bad tokens, auth modes."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from backend.api.access import route_entries
from backend.components import Components
from backend.domain.tokens import TokenScope
from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app, training_body, wait_for_status

pytestmark = pytest.mark.anyio

#: Open without a token whatever the mode.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/"),
    ("GET", "/dashboard/{path:path}"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
}
#: Host-facing: their own signature check answers, never the bearer check.
HOST_SIGNED = {
    ("POST", "/api/v1/callbacks/host-result"),
    ("PUT", "/api/v1/callbacks/checkpoints/{operation_id}"),
    ("GET", "/api/v1/callbacks/checkpoints/{operation_id}"),
    ("GET", "/api/v1/data/files/{name:path}/download"),
    ("GET", "/api/v1/data/{symbol}/{timeframe}/download"),
}
#: A Ray job's routes: its per-operation job token decides (backend.api.ray_jobs).
RAY_JOB = {
    ("GET", "/api/v1/ray/jobs/{operation_id}/spec"),
    ("GET", "/api/v1/ray/jobs/{operation_id}/data/{filename}"),
    ("POST", "/api/v1/ray/jobs/{operation_id}/progress"),
    ("POST", "/api/v1/ray/jobs/{operation_id}/failure"),
    ("PUT", "/api/v1/ray/jobs/{operation_id}/model"),
    ("POST", "/api/v1/ray/jobs/{operation_id}/result"),
}


@dataclass
class Secured:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: dict[str, str]

    @property
    def components(self) -> Components:
        components: Components = self.app.state.components
        return components

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
async def secured(settings: Settings, fakes: Fakes) -> AsyncIterator[Secured]:
    """Loopback, MODELYARD_AUTH=auto, and three tokens created once the app runs: tokens required."""
    app, lifespan = await start_app(settings, fakes)
    components: Components = app.state.components
    tokens = {
        name: components.tokens.create(name, TokenScope(name.split("-")[0]))[1]
        for name in ("read-bot", "train-bot", "admin-ops")
    }
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Secured(app, client, tokens)
    finally:
        await lifespan.__aexit__(None, None, None)


def _concrete(path: str) -> str:
    """A URL for a route template: every parameter filled with something a route could take."""
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "1" if m.group(1) == "version" else "x", path)


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, template) the app serves: OpenAPI's operations and the routes it does not list."""
    documented = {(m.upper(), p) for p, item in app.openapi()["paths"].items() for m in item}
    served = {(m, e.template) for e in route_entries(app.router.routes) for m in e.methods if m != "HEAD"}
    # OpenAPI spells ``{name:path}`` as ``{name}``.
    plain = {(m, re.sub(r"\{(\w+):\w+\}", r"{\1}", p)) for m, p in served}
    assert documented <= plain, documented - plain
    return sorted(served)


async def test_every_route_but_the_public_and_host_ones_refuses_a_request_without_a_token(
    secured: Secured,
) -> None:
    routes = _routes(secured.app)
    assert ("POST", "/api/v1/trainings") in routes
    assert len(routes) > 30
    for method, template in routes:
        if (method, template) in PUBLIC | HOST_SIGNED | RAY_JOB:
            continue
        response = await secured.client.request(method, _concrete(template))
        assert response.status_code == 401, (method, template, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_public_routes_answer_without_a_token(secured: Secured) -> None:
    assert (await secured.client.get("/health")).status_code == 200
    assert (await secured.client.get("/")).status_code == 200
    assert (await secured.client.get("/dashboard/favicon.svg")).status_code == 200
    assert (await secured.client.get("/openapi.json")).status_code == 200
    assert (await secured.client.get("/favicon.ico")).status_code == 404


async def test_host_routes_are_left_to_their_signature_check(secured: Secured, settings: Settings) -> None:
    settings.shared_secret = "s3cret-shared-with-hosts"
    for method, path in (
        ("POST", "/api/v1/callbacks/host-result"),
        ("PUT", f"/api/v1/callbacks/checkpoints/op_x?session_id=hs_x&epoch=1&sha256={'0' * 64}&size=2"),
        ("GET", "/api/v1/callbacks/checkpoints/op_x"),
    ):
        response = await secured.client.request(method, path, content=b"{}")
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "bad_signature"


async def test_ray_job_routes_take_only_a_job_token_of_their_operation(secured: Secured) -> None:
    for method, template in sorted(RAY_JOB):
        path = _concrete(template)
        for headers in ({}, {"authorization": "Bearer mjt_op_other.99999999999.00"}):
            response = await secured.client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, template, response.text)
            assert response.json()["error"]["code"] == "bad_job_token"


async def test_scopes_decide_what_each_token_may_do(secured: Secured, fakes: Fakes) -> None:
    api, read, train, admin = (
        secured.client,
        secured.auth("read-bot"),
        secured.auth("train-bot"),
        secured.auth("admin-ops"),
    )
    for path in ("/api/v1/operations", "/api/v1/system", "/api/v1/models", "/api/v1/data", "/metrics"):
        assert (await api.get(path, headers=read)).status_code == 200, path
    refused = await api.post("/api/v1/trainings", json=training_body(), headers=read)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "forbidden",
        "message": "token 'read-bot' lacks scope train (it has read)",
        "details": {"reason": "forbidden", "token": "read-bot", "needed": "train"},
    }
    assert (await api.get("/api/v1/tokens", headers=train)).status_code == 403

    accepted = await api.post("/api/v1/trainings", json=training_body(), headers=train)
    assert accepted.status_code == 202
    assert (await api.delete("/api/v1/models/trend/EURUSD_1h/versions/1", headers=train)).status_code == 403
    mode = {"mode": "local"}
    assert (await api.put("/api/v1/system/execution-mode", json=mode, headers=train)).status_code == 403

    assert (await api.delete("/api/v1/models/trend/EURUSD_1h/versions/1", headers=admin)).status_code == 204
    assert (await api.put("/api/v1/system/execution-mode", json=mode, headers=admin)).status_code == 200
    assert (await api.post("/api/v1/trainings", json=training_body(), headers=admin)).status_code == 202
    assert (await api.get("/api/v1/tokens", headers=admin)).status_code == 200


async def test_bad_tokens_are_refused_with_nothing_changed(secured: Secured, fakes: Fakes) -> None:
    components = secured.components
    _, expiring = components.tokens.create("short-lived", TokenScope.ADMIN, timedelta(hours=1))
    _, revoked = components.tokens.create("gone", TokenScope.ADMIN)
    components.tokens.revoke("gone")
    fakes.clock.current += timedelta(hours=2)
    guessed = "myd_" + secrets.token_urlsafe(32)
    cases = {
        "expired": f"Bearer {expiring}",
        "revoked": f"Bearer {revoked}",
        "malformed": "Bearer not-a-token",
        "wrong prefix": "Bearer " + "abc_" + secrets.token_urlsafe(32),
        "guessed": f"Bearer {guessed}",
        "other scheme": f"Basic {secured.tokens['admin-ops']}",
        "empty": "Bearer ",
    }
    for case, header in cases.items():
        response = await secured.client.post(
            "/api/v1/trainings", json=training_body(), headers={"Authorization": header}
        )
        assert response.status_code == 401, case
        assert response.json()["error"]["code"] == "unauthenticated", case
        assert response.headers["www-authenticate"] == 'Bearer realm="modelyard", error="invalid_token"'
    listed = await secured.client.get("/api/v1/operations", headers=secured.auth("admin-ops"))
    assert listed.json()["total"] == 0
    reasons = (await secured.client.get("/metrics", headers=secured.auth("read-bot"))).text
    for reason, count in (("expired", 1), ("revoked", 1), ("malformed", 4), ("unknown", 1)):
        assert f'modelyard_auth_failures_total{{reason="{reason}"}} {count}.0' in reasons, reason


async def test_refusals_are_counted_by_reason_in_metrics(secured: Secured) -> None:
    await secured.client.get("/api/v1/operations")
    await secured.client.post("/api/v1/trainings", json=training_body(), headers=secured.auth("read-bot"))
    text = (await secured.client.get("/metrics", headers=secured.auth("read-bot"))).text
    assert 'modelyard_auth_failures_total{reason="missing"} 1.0' in text
    assert 'modelyard_auth_failures_total{reason="forbidden"} 1.0' in text


async def test_metrics_can_be_made_public(secured: Secured, settings: Settings) -> None:
    assert (await secured.client.get("/metrics")).status_code == 401
    settings.metrics_public = True
    assert (await secured.client.get("/metrics")).status_code == 200


async def test_operations_record_which_token_submitted_and_cancelled_them(
    secured: Secured, fakes: Fakes
) -> None:
    fakes.engine.gate = threading.Event()
    api, train, admin = secured.client, secured.auth("train-bot"), secured.auth("admin-ops")
    op_id = (await api.post("/api/v1/trainings", json=training_body(), headers=train)).json()["operation_id"]
    await wait_for_status(api, op_id, {"running"}, headers=admin)
    cancelled = await api.post(f"/api/v1/operations/{op_id}/cancel", headers=admin)
    assert cancelled.json()["cancelled_by"] == "admin-ops"
    fakes.engine.gate.set()
    done = await wait_for_status(api, op_id, {"cancelled"}, headers=admin)
    assert done["submitted_by"] == "train-bot"
    assert done["cancelled_by"] == "admin-ops"
    logs = (await api.get(f"/api/v1/operations/{op_id}/logs", headers=admin)).json()["lines"]
    messages = [line["message"] for line in logs]
    assert any("accepted from token train-bot" in m for m in messages), messages
    assert any("cancelled by token admin-ops" in m for m in messages), messages


async def test_tokens_are_managed_over_the_api_by_admins(secured: Secured) -> None:
    api, admin = secured.client, secured.auth("admin-ops")
    created = await api.post(
        "/api/v1/tokens", json={"name": "ci", "scope": "train", "expires_in": "30d"}, headers=admin
    )
    assert created.status_code == 201
    body = created.json()
    assert re.fullmatch(r"myd_[A-Za-z0-9_-]{43}", body["token"])
    assert body["scopes"] == ["read", "train"]
    assert body["state"] == "active"
    assert body["expires_at"] is not None
    ci = {"Authorization": f"Bearer {body['token']}"}
    assert (await api.get("/api/v1/operations", headers=ci)).status_code == 200

    listed = (await api.get("/api/v1/tokens", headers=admin)).json()["items"]
    assert [t["name"] for t in listed] == ["read-bot", "train-bot", "admin-ops", "ci"]
    assert all("token" not in t for t in listed)
    again = await api.post("/api/v1/tokens", json={"name": "ci", "scope": "read"}, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "token_exists"

    revoked = await api.delete("/api/v1/tokens/ci", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    refused = await api.get("/api/v1/operations", headers=ci)
    assert refused.status_code == 401
    assert refused.json()["error"]["details"]["reason"] == "revoked"
    assert (await api.delete("/api/v1/tokens/nobody", headers=admin)).status_code == 404


async def test_a_lifetime_too_long_for_a_date_is_a_422_naming_expires_in(secured: Secured) -> None:
    admin = secured.auth("admin-ops")
    body = {"name": "forever", "scope": "read", "expires_in": "999999w"}
    response = await secured.client.post("/api/v1/tokens", json=body, headers=admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"] == {"field": "body.expires_in", "value": "999999w"}
    assert error["message"].startswith("body.expires_in: '999999w' is too long a lifetime")
    names = [t["name"] for t in (await secured.client.get("/api/v1/tokens", headers=admin)).json()["items"]]
    assert "forever" not in names


async def test_only_the_hash_of_a_token_is_stored(secured: Secured) -> None:
    stored = secured.components.tokens.list_tokens()
    secrets_given = set(secured.tokens.values())
    assert all(len(t.token_hash) == 64 and t.token_hash not in secrets_given for t in stored)


async def test_auto_mode_on_loopback_is_open_until_a_token_exists(settings: Settings, fakes: Fakes) -> None:
    app, lifespan = await start_app(settings, fakes)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            assert (await api.get("/api/v1/operations")).status_code == 200
            started = await api.post("/api/v1/trainings", json=training_body())
            assert started.status_code == 202
            op = (await api.get(f"/api/v1/operations/{started.json()['operation_id']}")).json()
            assert op["submitted_by"] is None
            app.state.components.tokens.create("first", TokenScope.READ)
            assert (await api.get("/api/v1/operations")).status_code == 401
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_a_peer_beyond_loopback_is_refused_while_tokens_are_off(
    settings: Settings, fakes: Fakes
) -> None:
    app, lifespan = await start_app(settings, fakes)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            refused = await api.get("/api/v1/operations")
            assert refused.status_code == 401
            assert refused.json()["error"]["details"] == {"reason": "not_loopback"}
            assert (await api.get("/health")).status_code == 200
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_required_mode_needs_a_token_even_on_loopback(settings: Settings, fakes: Fakes) -> None:
    settings.auth = "required"
    app, lifespan = await start_app_with_token(settings, fakes, "ops", TokenScope.READ)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            assert (await api.get("/api/v1/system")).status_code == 401
    finally:
        await lifespan.__aexit__(None, None, None)


async def start_app_with_token(
    settings: Settings, fakes: Fakes, name: str, scope: TokenScope
) -> tuple[FastAPI, object]:
    from backend.components import standalone_tokens

    tokens, db = standalone_tokens(settings)
    try:
        tokens.create(name, scope)
    finally:
        db.dispose()
    return await start_app(settings, fakes)


async def test_the_openapi_document_says_which_operations_take_a_token(secured: Secured) -> None:
    schema = (await secured.client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    paths = schema["paths"]
    assert paths["/api/v1/trainings"]["post"]["security"] == [{"bearerToken": []}]
    assert "scope `train`" in paths["/api/v1/trainings"]["post"]["description"]
    assert paths["/health"]["get"]["security"] == []
    assert paths["/api/v1/callbacks/host-result"]["post"]["security"] == []
    assert paths["/api/v1/data/files/{name}/download"]["get"]["security"] == []
    assert "scope `admin`" in paths["/api/v1/tokens"]["post"]["description"]


async def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(secured: Secured) -> None:
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(1000):
            sent.append(1)
            yield b"x" * 65536

    response = await secured.client.post("/api/v1/data", content=body(), headers={"content-type": "text/csv"})
    assert response.status_code == 401
    assert len(sent) <= 1


async def test_tokens_stay_required_on_loopback_after_the_last_one_expires(
    settings: Settings, fakes: Fakes
) -> None:
    app, lifespan = await start_app(settings, fakes)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            app.state.components.tokens.create("brief", TokenScope.READ, timedelta(hours=1))
            fakes.clock.current += timedelta(hours=2)
            assert (await api.get("/api/v1/operations")).status_code == 401
            app.state.components.tokens.revoke("brief")
            assert (await api.get("/api/v1/operations")).status_code == 200
    finally:
        await lifespan.__aexit__(None, None, None)
