"""Health, system state and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from backend.api.dependencies import ComponentsDep
from backend.components import database_label
from backend.domain.execution_modes import ExecutionMode
from backend.domain.operations import OperationStatus
from backend.errors import error_body
from backend.services.telemetry import CONTENT_TYPE
from shared.contracts.api import ExecutionModeState, HealthView, SystemView

router = APIRouter(tags=["system"])

VERSION = "0.1.0"


@router.get("/health", response_model=HealthView, responses={503: {"description": "database unreachable"}})
def health(components: ComponentsDep) -> HealthView | JSONResponse:
    try:
        components.operations.ping()
    except Exception as exc:
        body = error_body("database_unavailable", f"the database does not answer: {type(exc).__name__}")
        return JSONResponse(body, status_code=503)
    return HealthView()


@router.get("/api/v1/system", response_model=SystemView)
def system(components: ComponentsDep) -> SystemView:
    """Version, device, execution modes and their state, queue depth."""
    counts = components.operations.count_by_status()
    host_up = components.selector.host_available()
    modes = [
        ExecutionModeState(
            mode=ExecutionMode.LOCAL.value, available=True, detail=f"in-process on {components.device}"
        ),
        ExecutionModeState(
            mode=ExecutionMode.HOST.value,
            available=host_up,
            detail="host service reachable" if host_up else "no host service configured or reachable",
        ),
        ExecutionModeState(
            mode=ExecutionMode.AUTO.value, available=True, detail="local unless a GPU is required"
        ),
    ]
    return SystemView(
        version=VERSION,
        device=components.device,
        default_execution_mode=components.selector.default.value,
        execution_modes=modes,
        queue_depth=counts.get(OperationStatus.PENDING, 0),
        running=counts.get(OperationStatus.RUNNING, 0) + counts.get(OperationStatus.CANCELLING, 0),
        local_concurrency=components.settings.local_concurrency,
        database=database_label(components),
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(components: ComponentsDep) -> Response:
    """Prometheus text format."""
    return Response(components.telemetry.render(), media_type=CONTENT_TYPE)
