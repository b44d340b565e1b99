"""Who may call which route: the one table of route scopes, and the middleware that enforces it.

Every route needs a token with a scope when tokens are required (``backend.domain.access``): ``read`` for
a GET, ``admin`` for anything else, unless ``ROUTE_ACCESS`` says otherwise. A route added later is
therefore never open by omission: at worst it asks for more than it should.

The check is pure ASGI and reads only headers, so a refused request is answered before its body is read
(and before the body size limit would buffer anything).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.components import Components
from backend.domain.access import CREATE_ADMIN_TOKEN, AuthMode, is_loopback, tokens_required
from backend.domain.tokens import TokenScope
from backend.errors import AuthenticationError
from shared.contracts.errors import error_body

#: Where the middleware leaves the name of the token a request came with (see ``dependencies.get_caller``).
CALLER_KEY = "modelyard.token_name"


class Open(StrEnum):
    """Routes the bearer check leaves alone."""

    PUBLIC = "public"
    #: Host-facing routes: their own signature check (``host_access``) decides.
    HOST_SIGNED = "host_signed"
    #: Ray jobs' routes: their job token (``ray_jobs.job_operation``) decides.
    RAY_JOB = "ray_job"


Access = TokenScope | Open

ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/health"): Open.PUBLIC,
    ("GET", "/"): Open.PUBLIC,
    ("GET", "/dashboard/{path:path}"): Open.PUBLIC,
    # The API's description is no secret, and Swagger UI must load to take a token ("Authorize").
    ("GET", "/docs"): Open.PUBLIC,
    ("GET", "/docs/oauth2-redirect"): Open.PUBLIC,
    ("GET", "/redoc"): Open.PUBLIC,
    ("GET", "/openapi.json"): Open.PUBLIC,
    ("POST", "/api/v1/callbacks/host-result"): Open.HOST_SIGNED,
    ("PUT", "/api/v1/callbacks/checkpoints/{operation_id}"): Open.HOST_SIGNED,
    ("GET", "/api/v1/callbacks/checkpoints/{operation_id}"): Open.HOST_SIGNED,
    ("GET", "/api/v1/data/files/{name:path}/download"): Open.HOST_SIGNED,
    ("GET", "/api/v1/data/{symbol}/{timeframe}/download"): Open.HOST_SIGNED,
    ("GET", "/api/v1/ray/jobs/{operation_id}/spec"): Open.RAY_JOB,
    ("GET", "/api/v1/ray/jobs/{operation_id}/data/{filename}"): Open.RAY_JOB,
    ("POST", "/api/v1/ray/jobs/{operation_id}/progress"): Open.RAY_JOB,
    ("POST", "/api/v1/ray/jobs/{operation_id}/failure"): Open.RAY_JOB,
    ("PUT", "/api/v1/ray/jobs/{operation_id}/model"): Open.RAY_JOB,
    ("POST", "/api/v1/ray/jobs/{operation_id}/result"): Open.RAY_JOB,
    ("POST", "/api/v1/trainings"): TokenScope.TRAIN,
    ("POST", "/api/v1/operations/{operation_id}/cancel"): TokenScope.TRAIN,
    ("POST", "/api/v1/operations/{operation_id}/retry"): TokenScope.TRAIN,
    ("DELETE", "/api/v1/operations/{operation_id}"): TokenScope.TRAIN,
    ("POST", "/api/v1/data"): TokenScope.TRAIN,
    ("POST", "/api/v1/data/sample"): TokenScope.TRAIN,
    ("POST", "/api/v1/strategies/validate"): TokenScope.TRAIN,
    # A sweep starts trainings (and sets an alias on its best model, as the sweep's own step).
    ("POST", "/api/v1/sweeps"): TokenScope.TRAIN,
    ("POST", "/api/v1/sweeps/{sweep_id}/cancel"): TokenScope.TRAIN,
    ("DELETE", "/api/v1/models/{strategy}/{name}/versions/{version}"): TokenScope.ADMIN,
    # Moving an alias changes what every consumer of ``…/versions/production`` loads: admin only.
    ("PUT", "/api/v1/models/{strategy}/{name}/aliases/{alias:path}"): TokenScope.ADMIN,
    ("DELETE", "/api/v1/models/{strategy}/{name}/aliases/{alias:path}"): TokenScope.ADMIN,
    ("PUT", "/api/v1/system/execution-mode"): TokenScope.ADMIN,
    ("GET", "/api/v1/tokens"): TokenScope.ADMIN,
    ("POST", "/api/v1/tokens"): TokenScope.ADMIN,
    ("DELETE", "/api/v1/tokens/{name}"): TokenScope.ADMIN,
}

#: Paths no route serves that browsers ask for on their own.
PUBLIC_PATHS = frozenset({"/favicon.ico"})


def access_of(method: str, template: str | None, *, metrics_public: bool) -> Access:
    """What a request needs: by the table, else ``read`` for GET/HEAD and ``admin`` for the rest."""
    if template == "/metrics" and method in ("GET", "HEAD"):
        return Open.PUBLIC if metrics_public else TokenScope.READ
    if template is not None and (method, template) in ROUTE_ACCESS:
        return ROUTE_ACCESS[(method, template)]
    return TokenScope.READ if method in ("GET", "HEAD") else TokenScope.ADMIN


@dataclass(frozen=True)
class RouteEntry:
    template: str
    methods: frozenset[str]
    regex: re.Pattern[str]
    route: BaseRoute


def route_entries(routes: Sequence[BaseRoute], prefix: str = "") -> list[RouteEntry]:
    """Every route the app serves, in the order its router tries them. FastAPI keeps an included router
    as one nested route (``original_router``, its ``include_context.prefix``): walk into it."""
    entries: list[RouteEntry] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            more = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            entries += route_entries(inner.routes, prefix + more)
        elif isinstance(route, Route):
            regex, _, _ = compile_path(prefix + route.path)
            methods = frozenset(route.methods or ())
            entries.append(RouteEntry(prefix + route.path, methods, regex, route))
    return entries


def matched_route(entries: Sequence[RouteEntry], path: str, method: str) -> RouteEntry | None:
    """The route the router will pick (or, for a method it does not allow, the one it will 405 on)."""
    partial = None
    for entry in entries:
        if entry.regex.match(path):
            if method in entry.methods:
                return entry
            partial = partial or entry
    return partial


class TokenAuth:
    """401 without a usable bearer token, 403 when it lacks the route's scope, in the shared error
    body; counts every refusal in ``modelyard_auth_failures_total{reason}``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._entries: list[RouteEntry] | None = None  # read once: routes do not change once serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        components: Components | None = None
        if scope["type"] == "http" and "app" in scope:
            components = getattr(scope["app"].state, "components", None)
        if components is None:  # not HTTP, or the lifespan has not built anything yet
            await self.app(scope, receive, send)
            return
        if self._entries is None:
            self._entries = route_entries(scope["app"].router.routes)
        path = route_path(scope)
        entry = matched_route(self._entries, path, scope["method"])
        template = entry.template if entry else None
        needed = access_of(scope["method"], template, metrics_public=components.settings.metrics_public)
        if isinstance(needed, Open) or (template is None and path in PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        refusal = await _refusal(components, scope, needed)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        if entry is not None:
            scope["route"] = entry.route  # so the latency histogram labels the 401 by its route template
        components.telemetry.observe_auth_failure(str(refusal.details.get("reason", "forbidden")))
        await refusal.response()(scope, receive, send)


class _Refusal:
    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def response(self) -> JSONResponse:
        headers = {}
        if self.status == 401:
            error = ', error="invalid_token"' if self.details.get("reason") != "missing" else ""
            headers["WWW-Authenticate"] = f'Bearer realm="modelyard"{error}'
        return JSONResponse(
            error_body(self.code, self.message, dict(self.details)), status_code=self.status, headers=headers
        )


async def _refusal(components: Components, scope: Scope, needed: TokenScope) -> _Refusal | None:
    """Why this request may not go on (None: it may); on success the token's name goes into the scope."""
    settings = components.settings
    required = tokens_required(
        AuthMode(settings.auth),
        listen_host=settings.host,
        tokens_exist=await components.tokens.tokens_exist(),
        insecure=settings.insecure_no_auth,
    )
    if not required:
        if settings.insecure_no_auth or _from_loopback(scope):
            return None
        # Tokens are off because this backend believes it listens on loopback only, yet the peer is
        # elsewhere (another front listens for it: a proxy, ``uvicorn --host 0.0.0.0``): never serve it.
        return _Refusal(
            401,
            "unauthenticated",
            "this backend serves other machines only with API tokens: create one on the server "
            f"({CREATE_ADMIN_TOKEN}) and send it as 'Authorization: Bearer <token>'",
            reason="not_loopback",
        )
    presented = _bearer(scope)
    if presented is None:
        return _Refusal(
            401,
            "unauthenticated",
            "this API needs a token: send 'Authorization: Bearer <token>' (the CLI: --token or "
            "MODELYARD_TOKEN); an admin creates one with `modelyard tokens create NAME --scope read|train|admin`",
            reason="missing",
        )
    try:
        token = await components.tokens.authenticate(presented)
    except AuthenticationError as exc:
        return _Refusal(401, exc.code, exc.message, **{k: str(v) for k, v in exc.details.items()})
    if not token.grants(needed):
        return _Refusal(
            403,
            "forbidden",
            f"token {token.name!r} lacks scope {needed.value} (it has {token.highest_scope.value})",
            reason="forbidden",
            token=token.name,
            needed=needed.value,
        )
    scope[CALLER_KEY] = token.name
    return None


def route_path(scope: Scope) -> str:
    """The path the router matches: without the ``root_path`` a proxy mounts the app under."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root) :] or "/" if root and path.startswith(root) else path


def _bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer …`` header; "" for another scheme or an empty value."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else ""
    return None


def _from_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return True  # a Unix socket: only this machine reaches it
    host = str(client[0])
    return host == "testclient" or is_loopback(host)  # "testclient": Starlette's TestClient


BEARER_SCHEME = "bearerToken"


def document_security(schema: dict[str, Any], *, metrics_public: bool) -> dict[str, Any]:
    """Mark in an OpenAPI document which operations take a bearer token and which scope, from the same
    table, so Swagger UI's *Authorize* sends the token where it is needed."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER_SCHEME] = {"type": "http", "scheme": "bearer", "description": "myd_… API token"}
    # OpenAPI writes ``{name:path}`` as ``{name}``.
    plain = {(m, _CONVERTOR.sub(r"{\1}", p)): access for (m, p), access in ROUTE_ACCESS.items()}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            access = plain.get((method.upper(), path)) or access_of(
                method.upper(), path, metrics_public=metrics_public
            )
            if isinstance(access, Open):
                operation["security"] = []
            else:
                operation["security"] = [{BEARER_SCHEME: []}]
                operation["description"] = (
                    operation.get("description", "") + f"\n\nNeeds a token with scope `{access.value}` "
                    "when tokens are required."
                ).strip()
    return schema


_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
