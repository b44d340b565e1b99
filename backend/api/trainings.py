"""POST /api/v1/trainings: validate, record and queue a training."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from backend.api.dependencies import CallerDep, TrainingDep
from backend.api.error_handlers import error_responses
from shared.contracts.operations import OperationStatusName, StartTrainingRequest, StartTrainingResponse

router = APIRouter(prefix="/api/v1/trainings", tags=["trainings"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartTrainingResponse,
    responses=error_responses(400, 404, 409, 413, 422, 503),
)
def start_training(
    body: StartTrainingRequest, training: TrainingDep, response: Response, caller: CallerDep
) -> StartTrainingResponse:
    """Accept a training: 202 with the operation; the same ``idempotency_key`` returns the same operation."""
    op, created = training.start_training(body, submitted_by=caller)
    link = f"/api/v1/operations/{op.id}"
    response.headers["Location"] = link
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return StartTrainingResponse(
        operation_id=op.id,
        status=OperationStatusName(op.status.value),
        execution_mode=op.execution_mode,
        mode_reason=op.mode_reason,
        warnings=list(op.warnings),
        link=link,
    )
