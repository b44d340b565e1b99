"""Wire schemas between a Ray job (``modelyard ray-job``) and the backend that submitted it (pydantic only).

Every call carries the job's own bearer credential (a job token naming this job's submission, never the
shared secret: a job's runtime_env is visible in Ray's dashboard). Endpoints, all under
``/api/v1/ray/jobs/{operation_id}``::

    GET  /spec                 -> StartSession (the request and the data files to fetch)
    GET  /data/{filename}      -> the bytes of one of those files
    POST /progress   JobProgress
    PUT  /model                 raw model bytes (streamed; header MODEL_SHA256_HEADER)
    POST /result     ResultPayload (shared.contracts.host; model inline, or "external" after PUT /model)
    POST /failure    JobFailure (the training failed; the job then exits non-zero)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.training import ProgressUpdate

JOB_TOKEN_ENV = "MODELYARD_JOB_TOKEN"
#: The ``url`` of an ExternalModel that the job uploaded with PUT /model before posting its result.
UPLOADED_MODEL_URL = "uploaded"


_PROGRESS_EXAMPLE: dict[str, Any] = {
    "progress": {
        "percentage": 42.0,
        "phase": "training",
        "message": "Epoch 2/5",
        "epoch": 2,
        "total_epochs": 5,
    },
    "device": "cuda",
}
_FAILURE_EXAMPLE: dict[str, Any] = {
    "code": "invalid_config",
    "message": "strategy.training.epochs must be at least 1",
    "details": {"field": "training.epochs"},
}


class JobProgress(BaseModel):
    """POST /progress: one update of the running training (epoch records carry ``extra.epoch_metrics``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PROGRESS_EXAMPLE]})

    progress: ProgressUpdate | None = None
    device: str | None = Field(None, max_length=64)


class JobFailure(BaseModel):
    """POST /failure: the training failed in the job with its own error (the job exits after it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_FAILURE_EXAMPLE]})

    code: str = Field(..., min_length=1, max_length=100)
    message: str = Field(..., max_length=10_000)
    details: dict[str, Any] = Field(default_factory=dict)
