"""The two reads polled most, answered from memory: ``GET /health`` and ``GET /api/v1/operations/{id}``.

A hundred clients following a training ask once a second each, and a load balancer probes health as
often; both answers are bytes already serialised (``OperationJson``, the health cache). Going through
FastAPI's routing (its included routers are matched twice per request), dependency solving and
response class for them cost more CPU than making the answer: :class:`PolledReads` answers them as pure
ASGI, *inside* the token check and the metrics (so every security property and the latency histogram
stay), and hands everything else, and every case it has no ready answer for (a health check that is
due, a pending or unknown operation), to the routes in ``system`` and ``operations`` unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.access import route_entries, route_path
from backend.api.views import OperationJson
from backend.components import Components
from backend.domain.operations import OperationStatus
from shared.contracts.api import HealthView

HEALTH_PATH = "/health"
OPERATION_PREFIX = "/api/v1/operations/"
OPERATION_TEMPLATE = OPERATION_PREFIX + "{operation_id}"

#: The healthy answer, serialised once: a probe asks far more often than anything in it changes.
HEALTHY_BODY = HealthView().model_dump_json().encode()


def healthy_body(components: Components) -> bytes | None:
    """The healthy answer while the last database check is fresh and passed; None when a check is due
    (or failed: the route then answers 503 with the reason)."""
    status = components.health.fresh()
    return HEALTHY_BODY if status is not None and status.ok else None


def operation_body(components: Components, bodies: OperationJson, operation_id: str) -> bytes | None:
    """A running or finished operation's JSON from memory; None when it must be read from the database
    (not in memory) or needs its queue position (pending)."""
    op = components.operations.get_cached(operation_id)
    if op is None or op.status is OperationStatus.PENDING:
        return None
    return bodies.body(op)


class PolledReads:
    """Answers the polled reads before FastAPI's router when their answer is ready in memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[str, BaseRoute] | None = None  # by template, for the latency histogram's label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            components: Components | None = getattr(scope["app"].state, "components", None)
            answer = self._answer(scope, components) if components is not None else None
            if answer is not None:
                template, body = answer
                scope["route"] = self._route(scope, template)
                await _send_json(send, body)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope, components: Components) -> tuple[str, bytes] | None:
        path = route_path(scope)
        if path == HEALTH_PATH:
            body = healthy_body(components)
            return (HEALTH_PATH, body) if body is not None else None
        if path.startswith(OPERATION_PREFIX):
            operation_id = path[len(OPERATION_PREFIX) :]
            if operation_id and "/" not in operation_id:
                body = operation_body(components, scope["app"].state.operation_json, operation_id)
                return (OPERATION_TEMPLATE, body) if body is not None else None
        return None

    def _route(self, scope: Scope, template: str) -> BaseRoute:
        if self._routes is None:  # read once: routes do not change once serving
            self._routes = {e.template: e.route for e in route_entries(scope["app"].router.routes)}
        return self._routes[template]


async def _send_json(send: Send, body: bytes) -> None:
    """The same response ``Response(body, media_type="application/json")`` sends."""
    headers: list[tuple[bytes, bytes]] = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
