"""Health, system state and Prometheus metrics."""

from __future__ import annotations

import logging

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from backend.api.dependencies import ComponentsDep
from backend.api.error_handlers import error_responses
from backend.api.polled_reads import HEALTHY_BODY, healthy_body
from backend.api.responses import responses
from backend.components import Components, database_label
from backend.domain.execution_modes import ExecutionMode
from backend.domain.hosts import HostState
from backend.domain.operations import OperationStatus
from backend.domain.ray_cluster import RayClusterState
from backend.services.telemetry import CONTENT_TYPE
from backend.version import VERSION
from shared.contracts.api import (
    ExecutionModeState,
    ExecutionModeView,
    HealthView,
    HostView,
    RayClusterView,
    SetExecutionModeRequest,
    SystemView,
)
from shared.contracts.errors import error_body

router = APIRouter(tags=["system"])
logger = logging.getLogger(__name__)


@router.get("/health", response_model=HealthView, responses=responses(503))
async def health(request: Request) -> Response:
    """From a database check at most ``MODELYARD_HEALTH_CACHE_S`` old (``polled_reads`` answers while it
    is fresh); a due check runs in a thread, not on the event loop."""
    # Not ComponentsDep: a sync dependency runs in the thread pool, a hop this path avoids when it can.
    components: Components = request.app.state.components
    body = healthy_body(components)
    if body is None:
        status = await to_thread.run_sync(components.health.check)
        if not status.ok:
            message = f"the database does not answer: {status.error}"
            return JSONResponse(error_body("database_unavailable", message), status_code=503)
        body = HEALTHY_BODY
    return Response(body, media_type="application/json")


@router.get("/api/v1/system", response_model=SystemView)
def system(components: ComponentsDep) -> SystemView:
    """Version, device, execution modes and their state, queue depth."""
    counts = components.operations.count_by_status()
    host_up = components.selector.host_available()
    hosts = [_host_view(state) for state in components.registry.states()]
    ray = _ray_view(components.selector.ray_state())
    healthy = [h for h in hosts if h.healthy]
    host_detail = (
        f"{len(healthy)} of {len(hosts)} host(s) healthy: "
        + ", ".join(f"{h.url} ({h.device_kind}, {h.sessions_in_use}/{h.capacity} busy)" for h in healthy)
        if healthy
        else (f"none of {len(hosts)} host(s) answers" if hosts else "no host configured (MODELYARD_HOSTS)")
    )
    modes = [
        ExecutionModeState(
            mode=ExecutionMode.LOCAL.value, available=True, detail=f"in-process on {components.device}"
        ),
        ExecutionModeState(
            mode=ExecutionMode.HOST.value,
            available=host_up,
            detail=host_detail,
        ),
        _ray_mode(ray),
        ExecutionModeState(
            mode=ExecutionMode.AUTO.value,
            available=True,
            detail="local unless a GPU is required; then a GPU host, then a Ray cluster with a free GPU",
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
        hosts=hosts,
        ray=ray,
    )


@router.put("/api/v1/system/execution-mode", response_model=ExecutionModeView, responses=error_responses(422))
def set_execution_mode(body: SetExecutionModeRequest, components: ComponentsDep) -> ExecutionModeView:
    """Change the default execution mode (for trainings that name none) until the backend restarts."""
    components.selector.default = ExecutionMode(body.mode)
    logger.info("default execution mode set to %s", body.mode)
    return ExecutionModeView(default_execution_mode=body.mode)


def _ray_view(state: RayClusterState | None) -> RayClusterView | None:
    if state is None:
        return None
    return RayClusterView(
        address=state.address,
        healthy=state.healthy,
        version=state.version,
        nodes=state.nodes,
        cpus=state.cpus,
        gpus=state.gpus,
        free_cpus=state.free_cpus,
        free_gpus=state.free_gpus,
        checked_at=state.checked_at,
        error=state.error,
    )


def _ray_mode(ray: RayClusterView | None) -> ExecutionModeState:
    if ray is None:
        detail = "no Ray cluster configured (MODELYARD_RAY_ADDRESS)"
    elif ray.healthy:
        detail = (
            f"Ray {ray.version} at {ray.address}: {ray.nodes} node(s), {ray.free_cpus:g}/{ray.cpus:g} CPU(s) "
            f"and {ray.free_gpus:g}/{ray.gpus:g} GPU(s) free"
        )
    else:
        detail = f"the Ray cluster at {ray.address} does not answer: {ray.error}"
    return ExecutionModeState(
        mode=ExecutionMode.RAY.value, available=bool(ray and ray.healthy), detail=detail
    )


def _host_view(state: HostState) -> HostView:
    return HostView(
        url=state.url,
        healthy=state.healthy,
        device_kind=state.device_kind,
        device_name=state.device_name,
        capacity=state.capacity,
        sessions_in_use=state.in_use,
        version=state.version,
        checked_at=state.checked_at,
        last_ok_at=state.last_ok_at,
        error=state.error,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses=responses(content=CONTENT_TYPE, description="Prometheus text exposition format"),
)
def metrics(components: ComponentsDep) -> Response:
    """Prometheus text format."""
    return Response(components.telemetry.render(), media_type=CONTENT_TYPE)
