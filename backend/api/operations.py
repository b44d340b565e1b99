"""Operations: list, get, cancel, metrics and logs (the SSE stream lives in ``events``)."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.openapi.models import Example
from fastapi.responses import FileResponse

from backend.api.dependencies import CallerDep, ComponentsDep, OperationsDep, TrainingDep
from backend.api.error_handlers import error_responses
from backend.api.polled_reads import operation_body
from backend.api.responses import responses
from backend.api.views import operation_metrics, operation_view
from backend.components import Components
from backend.domain.operations import OperationFilter, OperationStatus
from backend.errors import NotFoundError
from backend.services.operations import OperationsService
from backend.services.training import TrainingService
from shared.contracts.operations import (
    MAX_TAGS,
    SLUG_PATTERN,
    LogLine,
    OperationList,
    OperationLogs,
    OperationMetrics,
    OperationStatusName,
    OperationView,
    RetryRequest,
    Slug,
)
from shared.contracts.training import Workload
from shared.trainkit.workloads.command.process import OUTPUT_LOG

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])

#: Far beyond any real history, far below what a database integer overflows on.
MAX_OFFSET = 1_000_000_000


@router.get("", response_model=OperationList, responses=error_responses(422))
def list_operations(
    operations: OperationsDep,
    status: Annotated[
        list[OperationStatusName] | None, Query(description="Only these statuses; repeatable.")
    ] = None,
    active_only: Annotated[
        bool, Query(description="Only operations not finished yet: pending, running or cancelling.")
    ] = False,
    type: Annotated[str | None, Query(max_length=32, description="Operation type, e.g. training.")] = None,
    project: Annotated[
        str | None, Query(pattern=SLUG_PATTERN, description="Only this project (a slug).")
    ] = None,
    tag: Annotated[
        list[Slug] | None,
        Query(max_length=MAX_TAGS, description="Only operations carrying this tag; repeatable: all of them."),
    ] = None,
    workload: Annotated[
        Workload | None, Query(description="Only this workload: strategy, tabular, plugin or command.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Operations to skip.")] = 0,
) -> OperationList:
    """Newest first. Filters combine (AND); ``total`` counts every operation they select."""
    where = OperationFilter(
        statuses=tuple(OperationStatus(s.value) for s in status or []),
        unfinished_only=active_only,
        op_type=type,
        project=project,
        tags=tuple(tag or ()),
        workload=workload.value if workload else None,
    )
    ops, total = operations.list_operations(where, limit=limit, offset=offset)
    positions = operations.queue_positions() if any(o.status is OperationStatus.PENDING for o in ops) else {}
    return OperationList(
        items=[operation_view(o, positions) for o in ops], total=total, limit=limit, offset=offset
    )


@router.get("/{operation_id}", response_model=OperationView, responses=error_responses(404))
async def get_operation(operation_id: str, request: Request) -> OperationView | Response:
    # The hot polling path, which ``polled_reads`` answers before routing while the answer is in memory;
    # here the rest: an operation not in memory or pending reads the database, in a thread.
    components: Components = request.app.state.components
    body = operation_body(components, request.app.state.operation_json, operation_id)
    if body is None:
        return await to_thread.run_sync(_read_operation, components.operations, operation_id)
    return Response(body, media_type="application/json")


def _read_operation(operations: OperationsService, operation_id: str) -> OperationView:
    op = operations.get(operation_id)
    positions = operations.queue_positions() if op.status is OperationStatus.PENDING else {}
    return operation_view(op, positions)


_CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": OperationView, "description": "cancelling: the stop is under way"},
    **error_responses(404, 409),
}


@router.post("/{operation_id}/cancel", response_model=OperationView, responses=_CANCEL_RESPONSES)
def cancel_operation(
    operation_id: str, training: TrainingDep, response: Response, caller: CallerDep
) -> OperationView:
    """Pending → cancelled at once (200); running → cancelling, stopping within one batch (202; a
    second cancel while cancelling changes nothing and answers the same); finished → 409."""
    return _cancel(operation_id, training, response, caller)


@router.delete("/{operation_id}", response_model=OperationView, responses=_CANCEL_RESPONSES)
def delete_operation(
    operation_id: str, training: TrainingDep, response: Response, caller: CallerDep
) -> OperationView:
    """Same as cancel: operations are kept as history, never erased."""
    return _cancel(operation_id, training, response, caller)


def _cancel(
    operation_id: str, training: TrainingService, response: Response, caller: str | None
) -> OperationView:
    op = training.cancel(operation_id, by=caller)
    if op.status is OperationStatus.CANCELLING:
        response.status_code = 202
    return operation_view(op)


_RETRY_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": OperationView, "description": "queued again as a new attempt"},
    **error_responses(404, 409, 422),
}


_RETRY_EXAMPLES: dict[str, Example] = {
    "from the last checkpoint": {"value": {"from_checkpoint": True}},
    "from scratch": {"value": {"from_checkpoint": False}},
}


@router.post(
    "/{operation_id}/retry", response_model=OperationView, status_code=202, responses=_RETRY_RESPONSES
)
def retry_operation(
    operation_id: str,
    training: TrainingDep,
    caller: CallerDep,
    body: Annotated[RetryRequest | None, Body(openapi_examples=_RETRY_EXAMPLES)] = None,
) -> OperationView:
    """A failed, cancelled or interrupted operation runs again as a new attempt, from its newest valid
    checkpoint by default (``{"from_checkpoint": false}``: from scratch); its metrics history continues.
    409 while it is pending, running or cancelling, and once it completed."""
    op = training.retry(operation_id, from_checkpoint=(body or RetryRequest()).from_checkpoint, by=caller)
    return operation_view(op)


@router.get("/{operation_id}/metrics", response_model=OperationMetrics, responses=error_responses(404))
def get_operation_metrics(operation_id: str, operations: OperationsDep) -> OperationMetrics:
    """Per-epoch history with the best epoch and plateau / overfitting flags."""
    return operation_metrics(operations.get(operation_id))


@router.get("/{operation_id}/logs", response_model=OperationLogs, responses=error_responses(404))
def get_operation_logs(
    operation_id: str,
    components: ComponentsDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> OperationLogs:
    """What the training logged, oldest first; page with ``offset``."""
    op = components.operations.get(operation_id)
    lines, truncated = components.log_store.read(op.id, offset, limit)
    return OperationLogs(
        operation_id=op.id,
        lines=[LogLine(seq=x.seq, at=x.at, level=x.level, logger=x.logger, message=x.message) for x in lines],
        next_offset=offset + len(lines),
        truncated=truncated,
    )


_OUTPUT_RESPONSES = responses(
    404, content="text/plain", description="output.log: every line, each after its UTC time"
)


@router.get("/{operation_id}/output", response_class=FileResponse, responses=_OUTPUT_RESPONSES)
def get_operation_output(operation_id: str, components: ComponentsDep) -> FileResponse:
    """A command training's whole output as the program printed it (stdout and stderr in order, each line
    after its UTC time), read from the run record while it runs or after; the operation's log holds
    only a rate-limited part of a chatty program's lines. 404 for other workloads and host runs."""
    op = components.operations.get(operation_id)
    path = components.settings.runs_dir / op.id / OUTPUT_LOG
    if not path.is_file():
        raise NotFoundError(
            f"operation {op.id} has no output log here: only command trainings run by this backend keep one "
            "(a host keeps its own)",
            operation_id=op.id,
        )
    return FileResponse(path, media_type="text/plain; charset=utf-8", filename=f"{op.id}-output.log")
