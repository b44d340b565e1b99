"""POST /api/v1/callbacks/host-result: where hosts deliver finished models (the ``callback_url``).

Order matters: size limit while reading, the Standard Webhooks signature over the raw bytes, the
``webhook-id`` seen for the first time, and only then parsing. Every rejection is a 4xx with nothing
stored and the operation untouched; a 2xx means the model is stored (or was already: a delivery of a
stored result, e.g. a host's retry signed afresh after a lost answer, answers ``duplicate: true``).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from backend.api.dependencies import ComponentsDep
from backend.api.error_handlers import error_responses
from backend.api.host_access import check_signed_webhook, read_body_limited
from backend.services.result_ingest import parse_payload
from shared.contracts.results import ModelRefView
from shared.trainkit.executor.types import ModelRef

router = APIRouter(prefix="/api/v1/callbacks", tags=["host mode"])


class HostResultReceipt(BaseModel):
    """The backend's answer to a delivered result."""

    operation_id: str
    model: ModelRefView | None = Field(None, description="Where the model is stored; null for none.")
    duplicate: bool = Field(..., description="True when this result was already stored (a redelivery).")


@router.post(
    "/host-result", response_model=HostResultReceipt, responses=error_responses(404, 409, 413, 422, 503)
)
async def receive_host_result(request: Request, components: ComponentsDep) -> HostResultReceipt:
    """A host's result payload (gzip+base64 model inline, or a reference to stream), signed."""
    settings = components.settings
    body = await read_body_limited(request, settings.callback_max_bytes)
    await asyncio.to_thread(check_signed_webhook, request, body, components)  # the replay guard's database
    payload = parse_payload(body)
    with components.logs.capture(payload.operation_id):
        outcome = await components.ingest.ingest(payload)
    model = outcome.model.as_dict() if isinstance(outcome.model, ModelRef) else outcome.model
    return HostResultReceipt(
        operation_id=outcome.operation_id,
        model=ModelRefView.model_validate(model) if model is not None else None,
        duplicate=outcome.duplicate,
    )
