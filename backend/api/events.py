"""GET /api/v1/operations/{id}/events: Server-Sent Events until the operation ends.

The first event is the current state (a late client catches up at once); then ``progress`` and
``status`` events; heartbeat comments keep proxies from closing an idle stream. The stream ends when
the operation ends, when the client goes away (Starlette cancels the generator) or at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from backend.api.dependencies import ComponentsDep
from backend.api.error_handlers import error_responses
from backend.api.views import operation_view
from backend.domain.operations import Operation, OperationStatus
from backend.services.events import Subscription
from backend.services.operations import OperationsService

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


def sse_message(kind: str, op: Operation, positions: dict[str, int] | None = None) -> str:
    data = operation_view(op, positions).model_dump_json()
    return f"event: {kind}\ndata: {data}\n\n"


@router.get(
    "/{operation_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(404)},
    response_class=StreamingResponse,
)
async def operation_events(operation_id: str, components: ComponentsDep) -> StreamingResponse:
    operations = components.operations
    # Subscribe before reading the state, so no event can fall between the two.
    subscription = components.broker.subscribe(operation_id)
    try:
        first = await to_thread.run_sync(operations.get, operation_id)
    except BaseException:
        subscription.close()
        raise
    stream = _stream(subscription, first, operations, components.settings.sse_heartbeat_s)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def _stream(
    subscription: Subscription, first: Operation, operations: OperationsService, heartbeat_s: float
) -> AsyncIterator[str]:
    try:
        positions = {}
        if first.status is OperationStatus.PENDING:
            positions = await to_thread.run_sync(operations.queue_positions)
        yield sse_message("state", first, positions)
        if first.is_terminal:
            return
        while True:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), timeout=heartbeat_s)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if event is None:  # the server is shutting down
                return
            yield sse_message(event.kind, event.operation)
            if event.operation.is_terminal:
                return
    finally:
        subscription.close()
