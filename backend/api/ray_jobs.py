"""The routes a Ray job (``modelyard ray-job``) calls back on: its spec, its data, progress, model, result.

Each takes the job's bearer job token, which names the job's submission and through it one operation: a
job reaches its own operation's data and reports only for it, only while the operation runs as that job
(an earlier attempt's job is refused), and not once the operation has ended. The model travels
inline in the result for small models, or is first streamed here (``PUT /model``, checked against its
sha256) and referenced from the result as ``uploaded``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from backend.api.dependencies import ComponentsDep
from backend.api.error_handlers import error_responses
from backend.api.host_access import read_body_limited
from backend.components import Components
from backend.domain.job_tokens import JobTokenError
from backend.domain.operations import ACTIVE_STATUSES, Operation, OperationError
from backend.errors import (
    ExecutionModeUnavailableError,
    InvalidRequestError,
    JobTokenRejectedError,
    NotFoundError,
    ResultRejectedError,
)
from backend.services.progress import merge_progress
from backend.services.result_ingest import parse_payload
from backend.services.streamed_files import receive_file
from shared.contracts.host import MODEL_SHA256_HEADER, StartSession
from shared.contracts.ray_jobs import JobFailure, JobProgress
from shared.trainkit.executor.types import ModelRef

router = APIRouter(prefix="/api/v1/ray/jobs", tags=["ray mode"])
JOB_RESPONSES = error_responses(401, 404, 422)


def bearer_token(request: Request) -> str:
    """The request's ``Authorization: Bearer`` credential ("" without one)."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def job_operation(operation_id: str, request: Request, components: ComponentsDep) -> Operation:
    """The operation this job token was minted for, still active in ray mode and running as the token's
    submission; 401 otherwise."""
    token = bearer_token(request)
    try:
        submission = components.job_tokens.verify(token, operation_id, components.operations.now())
    except JobTokenError as exc:
        raise JobTokenRejectedError(
            f"job token refused: {exc}; a Ray job sends the MODELYARD_JOB_TOKEN it was started with",
            reason=str(exc),
        ) from exc
    op = components.operations.get(operation_id)
    if op.execution_mode != "ray" or op.status not in ACTIVE_STATUSES:
        raise JobTokenRejectedError(
            f"operation {operation_id} is {op.status.value} in {op.execution_mode} mode; its job token is "
            "no longer accepted",
            reason="operation_ended",
        )
    if submission is not None and op.host_session_id != submission:
        raise JobTokenRejectedError(
            f"job token refused: it is Ray job {submission}'s, and operation {operation_id} runs as job "
            f"{op.host_session_id}; only the job an operation runs as is heard",
            reason="superseded",
        )
    return op


JobOperationDep = Annotated[Operation, Depends(job_operation)]


def _runner(components: Components) -> Any:
    if components.ray is None:
        raise ExecutionModeUnavailableError("this backend has no Ray cluster (MODELYARD_RAY_ADDRESS)")
    return components.ray


@router.get(
    "/{operation_id}/spec",
    response_model=StartSession,
    responses=JOB_RESPONSES,
)
def job_spec(
    op: JobOperationDep,
    components: ComponentsDep,
    checkpoints: Annotated[
        bool,
        Query(
            description="Also the `checkpoint_url` to ship training checkpoints to (with the job token) "
            "and, for a re-submitted job, the `resume_checkpoint` to resume from; left out by default so "
            "that a job of a modelyard that does not know those fields still reads the spec."
        ),
    ] = False,
) -> JSONResponse:
    """The training request and the data files to fetch (URLs under this job's own data route).
    Fetching it is the job's first sign of life: recorded as the operation's heartbeat (a job that fails
    before it ever reached the backend is a configuration fault, not retried)."""
    spec: StartSession = _runner(components).commands.build(op)
    now = components.operations.now()
    components.operations.update(op.id, lambda current: current.with_changes(heartbeat_at=now))
    base = f"{components.settings.backend_url}/api/v1/ray/jobs/{op.id}/data"
    refs = [ref.model_copy(update={"url": f"{base}/{ref.filename}"}) for ref in spec.datasets]
    spec = spec.model_copy(update={"datasets": refs, "callback_url": f"{base[:-5]}/result"})
    hidden = None if checkpoints else {"checkpoint_url", "resume_checkpoint"}
    return JSONResponse(spec.model_dump(mode="json", exclude=hidden))


@router.get("/{operation_id}/data/{filename}", response_class=FileResponse, responses=JOB_RESPONSES)
def job_data(filename: str, op: JobOperationDep, components: ComponentsDep) -> FileResponse:
    """One data file of this job's training (only those: the token reaches no other file)."""
    files = _runner(components).commands.files_of(op)
    if filename not in files:
        raise NotFoundError(
            f"{filename!r} is not a data file of operation {op.id}; it reads {sorted(files)}",
            filename=filename,
        )
    return FileResponse(files[filename], filename=filename)


@router.post("/{operation_id}/progress", responses=JOB_RESPONSES)
def job_progress(body: JobProgress, op: JobOperationDep, components: ComponentsDep) -> dict[str, bool]:
    """A progress update of the running training (per-epoch metrics land in the history)."""
    operations = components.operations
    now = operations.now()

    def change(current: Operation) -> Operation:
        updated = merge_progress(current, body.progress, now) if body.progress else current
        return updated.with_changes(device=body.device or updated.device, heartbeat_at=now)

    operations.report_live(op.id, change)
    return {"accepted": True}


@router.post("/{operation_id}/failure", responses=JOB_RESPONSES)
def job_failure(body: JobFailure, op: JobOperationDep, components: ComponentsDep) -> dict[str, bool]:
    """The training failed in the job (its own error, e.g. a bad config); the job exits after this."""
    details = {**body.details, "submission_id": op.host_session_id or op.id}
    components.operations.fail(op.id, OperationError(body.code, body.message, details))
    return {"accepted": True}


@router.put("/{operation_id}/model", responses=error_responses(401, 404, 413, 422))
async def job_model(request: Request, op: JobOperationDep, components: ComponentsDep) -> dict[str, Any]:
    """The model's raw bytes, streamed to a staging file; ``X-Content-SHA256`` must match them."""
    expected = request.headers.get(MODEL_SHA256_HEADER, "")
    if len(expected) != 64:
        raise InvalidRequestError(
            f"header {MODEL_SHA256_HEADER} (sha256 hex of the body) is required", field=MODEL_SHA256_HEADER
        )
    target = components.ingest.upload_path(op)
    if target is None:
        raise ResultRejectedError(
            "this backend keeps no uploaded models; send the model inline in the result"
        )
    size = await receive_file(
        request.stream(),
        target,
        sha256=expected,
        limit=components.settings.max_model_bytes,
        limit_setting="MODELYARD_MAX_MODEL_BYTES",
        rejected=ResultRejectedError,
    )
    return {"sha256": expected, "size": size}


@router.post("/{operation_id}/result", responses=error_responses(401, 404, 409, 413, 422, 503))
async def job_result(request: Request, op: JobOperationDep, components: ComponentsDep) -> dict[str, Any]:
    """The job's result payload (``session_id`` = its submission id); stored as a model version once."""
    body = await read_body_limited(request, components.settings.callback_max_bytes)
    payload = parse_payload(body)
    # The session is the job's submission id (the operation id, a retry's <id>-attempt-<n>): an earlier
    # attempt's job was refused with its token already (401); a legacy token's, by the ingest (409).
    if payload.operation_id != op.id or not payload.session_id.startswith(op.id):
        raise ResultRejectedError(
            f"a result for {payload.operation_id}/{payload.session_id} sent to the route of {op.id}",
            field="operation_id",
        )
    with components.logs.capture(op.id):
        outcome = await components.ingest.ingest(payload)
    model = outcome.model.as_dict() if isinstance(outcome.model, ModelRef) else outcome.model
    return {"operation_id": outcome.operation_id, "model": model, "duplicate": outcome.duplicate}
