"""Training sessions: start, status, stop, result (JSON or raw model), acknowledge, list."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from host_service.api.dependencies import ComponentsDep, SessionsDep
from host_service.api.signatures import signed_result_headers
from host_service.api.views import session_view
from shared.contracts.host import (
    MODEL_SHA256_HEADER,
    HostErrorBody,
    ResultPayload,
    SessionList,
    SessionView,
    StartSession,
)
from shared.contracts.signing import body_sha256

router = APIRouter(prefix="/training", tags=["training"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": HostErrorBody} for status in (401, 404, 409, 503)
}


class ModelFileResponse(FileResponse):
    """A model file read 1 MiB at a time: every read is a hop to a worker thread, and Starlette's
    64 KiB default makes that some 700 hops for a 45 MB model."""

    chunk_size = 1 << 20


@router.post("/start", status_code=202, response_model=SessionView, responses=_ERRORS)
async def start_training(command: StartSession, sessions: SessionsDep) -> SessionView:
    """Start a session for the backend's operation (idempotent for the same request while it is live)."""
    session, _ = await sessions.start(command)
    return session_view(session)


@router.get("/status/{session_id}", response_model=SessionView, responses=_ERRORS)
async def session_status(session_id: str, sessions: SessionsDep) -> SessionView:
    return session_view(sessions.get(session_id))


@router.post("/stop/{session_id}", response_model=SessionView, responses=_ERRORS)
async def stop_training(session_id: str, sessions: SessionsDep) -> SessionView:
    """Graceful cancel, then terminate and kill after the grace period; a finished session is unchanged."""
    return session_view(sessions.stop(session_id))


@router.get(
    "/result/{session_id}",
    responses={200: {"model": ResultPayload}, **_ERRORS},
    response_class=Response,
)
async def session_result(session_id: str, request: Request, components: ComponentsDep) -> Response:
    """The result payload, as the callback sends it (for a backend that missed the callback); the
    answer is signed over the body's sha256, bound to the request."""
    sessions = components.sessions
    session = sessions.get(session_id)
    body = await asyncio.to_thread(sessions.handoff.payload, session)
    sha256 = body_sha256(body)
    headers = {
        MODEL_SHA256_HEADER: sha256,
        **signed_result_headers(request, components.settings.secrets, sha256),
    }
    return Response(content=body, media_type="application/json", headers=headers)


@router.get("/result/{session_id}/model", response_class=FileResponse, responses=_ERRORS)
async def session_model(session_id: str, request: Request, components: ComponentsDep) -> ModelFileResponse:
    """The raw ``model.safetensors`` bytes (``artifacts.tar`` for a bundle), streamed; its sha256 is in the ``X-Content-SHA256`` header, which
    the answer's signature covers (the bytes themselves are checked against it by the backend)."""
    sessions = components.sessions
    model = sessions.handoff.model_file(sessions.get(session_id))
    signed = signed_result_headers(request, components.settings.secrets, model.sha256)
    return ModelFileResponse(
        model.path,
        media_type="application/octet-stream",
        headers={MODEL_SHA256_HEADER: model.sha256, **signed},
    )


@router.post("/result/{session_id}/ack", response_model=SessionView, responses=_ERRORS)
async def acknowledge_result(session_id: str, sessions: SessionsDep) -> SessionView:
    """The backend stored the result; the host deletes its copy."""
    return session_view(await sessions.acknowledge(session_id))


@router.get("/sessions", response_model=SessionList)
async def list_sessions(sessions: SessionsDep) -> SessionList:
    return SessionList(items=[session_view(s) for s in sessions.list()])
