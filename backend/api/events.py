"""GET /api/v1/operations/{id}/events: Server-Sent Events until the operation ends.

The first event is the current state (a late client catches up at once); then ``progress`` and
``status`` events; heartbeat comments keep proxies from closing an idle stream. Status (lifecycle)
events go out at once; progress is coalesced to at most one per MODELYARD_SSE_MIN_INTERVAL_S per
client (the newest wins); a pending operation gets a new ``state`` event whenever its queue position
moves. The stream ends when the operation ends, when the client goes away (Starlette cancels the
generator) or at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from backend.api.dependencies import ComponentsDep
from backend.api.responses import responses
from backend.api.views import operation_view
from backend.domain.operations import Operation, OperationStatus
from backend.services.events import ProgressThrottle, QueueMoved, Subscription
from backend.services.operations import OperationsService

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


def sse_message(kind: str, op: Operation, positions: dict[str, int] | None = None) -> str:
    data = operation_view(op, positions).model_dump_json()
    return f"event: {kind}\ndata: {data}\n\n"


@router.get(
    "/{operation_id}/events",
    responses=responses(404, content="text/event-stream", description="state, progress and status events"),
    response_class=StreamingResponse,
)
async def operation_events(operation_id: str, components: ComponentsDep) -> StreamingResponse:
    operations = components.operations
    # Subscribe before reading the state, so no event can fall between the two.
    subscription = components.broker.subscribe(operation_id)
    try:
        first = await to_thread.run_sync(operations.get, operation_id)
        # The first state's queue position is read with it, not when the stream starts sending.
        positions = await _positions(operations, first)
    except BaseException:
        subscription.close()
        raise
    settings = components.settings
    stream = _stream(
        subscription,
        first,
        positions,
        operations,
        settings.sse_heartbeat_s,
        ProgressThrottle(settings.sse_min_interval_s),
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def _positions(operations: OperationsService, op: Operation) -> dict[str, int]:
    if op.status is not OperationStatus.PENDING:
        return {}
    return await to_thread.run_sync(operations.queue_positions)


async def _stream(
    subscription: Subscription,
    first: Operation,
    positions: dict[str, int],
    operations: OperationsService,
    heartbeat_s: float,
    throttle: ProgressThrottle,
) -> AsyncIterator[str]:
    """Lifecycle events at once; progress at most once per throttle interval (the newest one wins);
    a pending operation's state again whenever its queue position changes."""
    try:
        yield sse_message("state", first, positions)
        current, held = first, None
        while not current.is_terminal:
            try:
                timeout = heartbeat_s if held is None else throttle.wait_s()
                item = await asyncio.wait_for(subscription.queue.get(), timeout=timeout)
            except TimeoutError:
                if held is None:
                    yield ": heartbeat\n\n"
                else:
                    yield sse_message(held.kind, held.operation)
                    throttle.sent()
                    held = None
                continue
            if item is None:  # the server is shutting down
                return
            if isinstance(item, QueueMoved):
                moved = await _positions(operations, current)
                if moved.get(current.id) != positions.get(current.id):
                    positions = moved
                    yield sse_message("state", current, positions)
                continue
            if _is_stale(item.operation, current):
                continue  # published before the first state was read: that state already covers it
            current = item.operation
            if item.kind == "progress":
                held = item
                if throttle.wait_s() <= 0:
                    yield sse_message(item.kind, item.operation)
                    throttle.sent()
                    held = None
                continue
            held = None  # a lifecycle event carries the newest state: the held progress is stale
            positions = await _positions(operations, current)
            yield sse_message(item.kind, current, positions)
    finally:
        subscription.close()


def _is_stale(update: Operation, current: Operation) -> bool:
    """An event behind what the client already has: same status, less progress (progress never goes
    backwards within a status). A status change is never stale, so a re-queued operation is still seen."""
    return update.status is current.status and update.progress.percentage < current.progress.percentage
