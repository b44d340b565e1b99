"""FakeBackend: a scripted stand-in for the backend's REST API behind ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

CREATED = "2025-01-05T10:00:00+00:00"


def operation(op_id: str, status: str, percentage: float = 0.0, **extra: Any) -> dict[str, Any]:
    """An ``OperationView`` body."""
    body: dict[str, Any] = {
        "operation_id": op_id,
        "type": "training",
        "status": status,
        "execution_mode": "local",
        "progress": {
            "percentage": percentage,
            "phase": "training" if status == "running" else status,
            "message": "",
            "epoch": 1 if status == "running" else None,
            "total_epochs": 2,
            "metrics": {"train_loss": 0.9} if status == "running" else {},
        },
        "created_at": CREATED,
    }
    body.update(extra)
    return body


COMPLETED_RESULT = {
    "model": {
        "strategy": "trend_momentum",
        "name": "EURUSD_1h",
        "version": 3,
        "path": "models/trend_momentum/EURUSD_1h_v3",
    },
    "device": "cpu",
    "epochs_trained": 2,
    "stop_reason": "max_epochs",
    "best_val_loss": 0.812,
    "test_metrics": {
        "accuracy": 0.61,
        "macro_f1": 0.55,
        "per_class": {"BUY": {"f1": 0.5}, "SELL": {"f1": 0.6}},
    },
}


LISTED = [
    operation("op-2", "running", 40.0, project="fx", name="baseline.v2", tags=["gpu", "baseline"]),
    operation("op-1", "completed", 100.0),
]


#: One scripted event-stream connection: operation bodies sent as events, an exception raised where it is.
StreamScript = list[dict[str, Any] | BaseException]


class ScriptedEventStream(httpx.SyncByteStream):
    """An SSE body: a heartbeat comment, then each operation as an event; an exception item is raised
    there (``httpx.ReadError`` is a dropped connection, ``KeyboardInterrupt`` a Ctrl-C)."""

    def __init__(self, script: StreamScript) -> None:
        self.script = script

    def __iter__(self) -> Iterator[bytes]:
        yield b": heartbeat\n\n"
        for index, item in enumerate(self.script):
            if isinstance(item, BaseException):
                raise item
            kind = "state" if index == 0 else "progress"
            yield f"event: {kind}\ndata: {json.dumps(item)}\n\n".encode()


@dataclass
class FakeBackend:
    """Answers by (method, path); ``operation_states`` are served one per poll, the last one repeatedly.

    The event stream (``GET …/events``) serves the scripts of ``event_streams`` one per connection; with
    none, a single connection sends every state of ``operation_states``. ``stream_events=False`` is an
    older server without the stream (404). Logs serve ``log_messages`` paged by offset/limit;
    ``logs_visible`` says how many exist after each poll (all by default).

    ``listed`` are the items ``GET /api/v1/operations`` answers (5 in all, when there are any);
    ``projects`` the items ``GET /api/v1/projects`` answers.

    ``requests`` records everything received so tests assert on what the CLI sent.
    """

    operation_states: list[dict[str, Any]] = field(default_factory=list)
    interrupt_on_poll: int | None = None
    errors: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    polls: int = 0
    stream_events: bool = True
    event_streams: list[StreamScript] = field(default_factory=list)
    event_connections: int = 0
    log_messages: list[str] = field(default_factory=lambda: ["epoch 1/2: loss 0.9"])
    logs_visible: list[int] = field(default_factory=list)
    logs_truncated: bool = False
    listed: list[dict[str, Any]] = field(default_factory=lambda: list(LISTED))
    projects: list[dict[str, Any]] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        if key in self.errors:
            status, body = self.errors[key]
            return httpx.Response(status, json=body)
        return self._route(request)

    def _route(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        if (method, path) == ("POST", "/api/v1/trainings"):
            return httpx.Response(
                202,
                json={
                    "operation_id": "op-1",
                    "status": "pending",
                    "execution_mode": "local",
                    "mode_reason": "local requested",
                    "warnings": ["few rows"],
                    "link": "/api/v1/operations/op-1",
                },
            )
        if method == "GET" and path == "/api/v1/operations":
            items = self.listed
            total = 5 if items else 0
            return httpx.Response(200, json={"items": items, "total": total, "limit": 2, "offset": 0})
        if method == "GET" and path == "/api/v1/projects":
            return httpx.Response(200, json={"items": self.projects})
        if method == "GET" and path.startswith("/api/v1/operations/") and path.endswith("/logs"):
            return self._logs(request)
        if method == "GET" and path.startswith("/api/v1/operations/") and path.endswith("/events"):
            return self._events()
        if method == "POST" and path.endswith("/retry"):
            retried = operation(path.split("/")[-2], "pending", 40.0)
            attempts = [{"number": 1, "outcome": "cancelled"}, {"number": 2, "outcome": "queued"}]
            return httpx.Response(202, json={**retried, "attempt_history": attempts})
        if method == "POST" and path.endswith("/cancel"):
            return httpx.Response(200, json=operation(path.split("/")[-2], "cancelling", 40.0))
        if method == "GET" and path.startswith("/api/v1/operations/"):
            return self._poll()
        return self._models(method, path)

    def _logs(self, request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        limit = int(request.url.params.get("limit", 1000))
        visible = len(self.log_messages)
        if self.logs_visible:
            visible = self.logs_visible[min(max(self.polls - 1, 0), len(self.logs_visible) - 1)]
        lines = [
            {"seq": i, "at": CREATED, "level": "INFO", "logger": "trainkit", "message": self.log_messages[i]}
            for i in range(offset, min(offset + limit, visible))
        ]
        body = {
            "operation_id": "op-1",
            "lines": lines,
            "next_offset": offset + len(lines),
            "truncated": self.logs_truncated,
        }
        return httpx.Response(200, json=body)

    def _events(self) -> httpx.Response:
        if not self.stream_events:
            missing = {"error": {"code": "not_found", "message": "Not Found", "details": {}}}
            return httpx.Response(404, json=missing)
        self.event_connections += 1
        if self.event_streams:
            script = self.event_streams[min(self.event_connections, len(self.event_streams)) - 1]
        else:
            script = list(self.operation_states)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=ScriptedEventStream(script))

    def _poll(self) -> httpx.Response:
        self.polls += 1
        if self.interrupt_on_poll is not None and self.polls == self.interrupt_on_poll:
            raise KeyboardInterrupt
        index = min(self.polls - 1, len(self.operation_states) - 1)
        return httpx.Response(200, json=self.operation_states[index])

    def _models(self, method: str, path: str) -> httpx.Response:
        if (method, path) == ("GET", "/api/v1/models"):
            summary = {"strategy": "trend_momentum", "name": "EURUSD_1h", "latest_version": 2, "versions": 2}
            return httpx.Response(200, json={"items": [summary]})
        if (method, path) == ("GET", "/api/v1/models/trend_momentum/EURUSD_1h"):
            versions: list[dict[str, Any]] = [
                {
                    "strategy": "trend_momentum",
                    "name": "EURUSD_1h",
                    "version": v,
                    "path": f"p/v{v}",
                    "created_at": CREATED,
                    "metrics": {"test": {"accuracy": 0.5 + v / 10, "macro_f1": 0.4}},
                }
                for v in (2, 1)
            ]
            body = {"strategy": "trend_momentum", "name": "EURUSD_1h", "versions": versions}
            return httpx.Response(200, json=body)
        if method == "GET" and path.endswith("/versions/2/download"):
            return httpx.Response(200, content=b"PK\x03\x04fake-zip-bytes")
        if method == "DELETE" and "/versions/" in path:
            return httpx.Response(204)
        missing = {"error": {"code": "not_found", "message": f"no route {method} {path}", "details": {}}}
        return httpx.Response(404, content=json.dumps(missing).encode())
