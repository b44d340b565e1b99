"""Training checkpoints of remote trainings: the host (or the Ray job) ships each new one here, and a host
(or job) that takes over a lost training downloads the newest from here.

Two credentials open these routes: a host's signature (the shared secret) for a host training, or a Ray
job's bearer job token for its own operation only (``backend.api.ray_jobs.job_operation``: the token
names the job's submission, which must be the one the operation, active in ray mode, runs as; the job
ships with ``session_id`` = its submission id, as it posts its result).

``PUT /api/v1/callbacks/checkpoints/{operation_id}?session_id=&epoch=&sha256=&size=&name=`` is a signed
request (:mod:`backend.api.host_access`) whose signature covers the query, so the body's digest and size
are signed with it; the body itself streams to disk. ``name`` is the file's (trainkit's
``epoch-NNNNNN.ckpt``, the default, or a command's ``step-NNNNNNNNN-<file>``) and ``epoch`` its label.
Order: the announced size against the cap (413), the name and its label (422 ``invalid_request``), the
signature and its ``webhook-id`` seen for the first time (401, 409 ``replayed``), the operation running
on that very session (404, 409 ``checkpoint_refused``), then the bytes: more than the cap (413) or other
than announced (422 ``checkpoint_rejected``) leave the older checkpoint in place.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from backend.api.data import SHA256_HEADER
from backend.api.dependencies import ComponentsDep
from backend.api.error_handlers import error_responses
from backend.api.host_access import check_signed_request
from backend.api.ray_jobs import bearer_token, job_operation
from backend.api.responses import responses
from backend.domain.checkpoints import ShippedCheckpoint
from backend.domain.operations import ACTIVE_STATUSES, Operation
from backend.errors import CheckpointRefusedError, InvalidRequestError, NotFoundError, PayloadTooLargeError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/callbacks/checkpoints", tags=["host mode"])

SHA256_PATTERN = "^[0-9a-f]{64}$"


class CheckpointReceipt(BaseModel):
    """The backend's answer to a stored checkpoint."""

    operation_id: str
    epoch: int = Field(
        ...,
        description="The epoch (a command checkpoint: the step) of the checkpoint now kept for the operation.",
    )
    sha256: str
    size: int
    name: str = Field(..., description="The kept file's name.")


@router.put(
    "/{operation_id}",
    response_model=CheckpointReceipt,
    responses=error_responses(401, 404, 409, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "<the raw bytes of epoch-000012.ckpt>",
                }
            },
        }
    },
)
async def receive_checkpoint(
    operation_id: str,
    request: Request,
    components: ComponentsDep,
    session_id: Annotated[str, Query(min_length=1, max_length=200, description="The sending session.")],
    epoch: Annotated[
        int,
        Query(
            ge=0, description="The epoch the checkpoint was written after (a command checkpoint: its step)."
        ),
    ],
    sha256: Annotated[str, Query(pattern=SHA256_PATTERN, description="sha256 hex of the body.")],
    size: Annotated[int, Query(ge=0, description="Length of the body in bytes.")],
    name: Annotated[
        str | None,
        Query(
            max_length=200,
            description="The file's name: `epoch-NNNNNN.ckpt` (the default, from `epoch`) or a command's "
            "kept copy `step-NNNNNNNNN-<file>` (letters, digits, `.`, `_`, `-`), carrying `epoch` as its "
            "number; no path parts.",
        ),
    ] = None,
) -> CheckpointReceipt:
    """A host's (signed) or a Ray job's (its job token) newest training checkpoint, the raw bytes streamed;
    it replaces the older one of its kind."""
    store = components.checkpoints
    declared = request.headers.get("content-length", "")
    biggest = max(size, int(declared) if declared.isdigit() else 0)
    if biggest > store.max_bytes:
        raise PayloadTooLargeError(
            f"checkpoint of {biggest} bytes exceeds {store.max_bytes} bytes (MODELYARD_CHECKPOINT_MAX_BYTES)",
            limit=store.max_bytes,
            size=biggest,
        )
    try:
        shipped = ShippedCheckpoint(
            session_id=session_id, epoch=epoch, sha256=sha256, size=size, name=name or ""
        )
    except ValueError as exc:
        raise InvalidRequestError(f"name: {exc}", field="name", name=name, epoch=epoch) from exc
    op, by_job = await asyncio.to_thread(_authorised_operation, operation_id, request, components)
    _require_running_on(op, session_id, by_job=by_job)
    with components.logs.capture(op.id):
        stored = await store.receive(op.id, shipped, request.stream(), components.operations.now())
        logger.info(
            "checkpoint of %s %d (%s, %d bytes) received from %s %s",
            shipped.kind,
            epoch,
            shipped.name,
            size,
            "Ray job" if by_job else "host",
            session_id if by_job else op.host_url,
        )
    return CheckpointReceipt(
        operation_id=op.id, epoch=stored.epoch, sha256=stored.sha256, size=stored.size, name=stored.path.name
    )


@router.get(
    "/{operation_id}",
    response_class=FileResponse,
    responses=responses(
        401, 404, 409, content="application/octet-stream", description="the newest shipped checkpoint"
    ),
)
def download_checkpoint(operation_id: str, request: Request, components: ComponentsDep) -> FileResponse:
    """The newest checkpoint kept for the operation, its sha256 in ``X-Content-SHA256`` (a host or a Ray
    job resuming a lost training fetches it this way). Signed like the data downloads, or the operation's
    own job token (of the job the operation runs as)."""
    _authorised_operation(operation_id, request, components)
    stored = components.checkpoints.latest(operation_id)
    if stored is None:
        raise NotFoundError(f"no checkpoint is kept for operation {operation_id}", operation_id=operation_id)
    return FileResponse(stored.path, filename=stored.path.name, headers={SHA256_HEADER: stored.sha256})


def _authorised_operation(
    operation_id: str, request: Request, components: ComponentsDep
) -> tuple[Operation, bool]:
    """The operation, once the request proves a host's signature or the job token of the job it runs as
    (then True: a Ray job asks)."""
    if bearer_token(request):
        return job_operation(operation_id, request, components), True
    check_signed_request(request, b"", components)
    return components.operations.get(operation_id), False


def _require_running_on(op: Operation, session_id: str, *, by_job: bool) -> None:
    """A host ships for the operation running on its session; a Ray job (its token checked) for its own
    operation, from the job the operation runs as (an earlier attempt's job is refused)."""
    mode = "ray" if by_job else "host"
    if op.status in ACTIVE_STATUSES and op.execution_mode == mode and op.host_session_id == session_id:
        return
    where = f"on session {op.host_session_id}" if op.host_session_id else "on no host session"
    raise CheckpointRefusedError(
        f"operation {op.id} is {op.status.value} {where}, not running on session {session_id}: its "
        "checkpoints are not taken from there",
        operation_id=op.id,
        session_id=session_id,
        status=op.status.value,
    )
