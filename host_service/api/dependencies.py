"""What routes depend on, as ``Annotated`` aliases; the lifespan puts the components on ``app.state``.

``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request for
an attribute lookup (as in ``backend.api.dependencies``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from host_service.services.capacity import CapacityLedger
from host_service.services.sessions import SessionService
from host_service.settings import HostSettings


@dataclass
class HostComponents:
    settings: HostSettings
    sessions: SessionService
    ledger: CapacityLedger
    device: dict[str, Any]
    version: str


def components_of(request: Request) -> HostComponents:
    found: HostComponents = request.app.state.components
    return found


async def components(request: Request) -> HostComponents:
    return components_of(request)


async def sessions(request: Request) -> SessionService:
    return components_of(request).sessions


ComponentsDep = Annotated[HostComponents, Depends(components)]
SessionsDep = Annotated[SessionService, Depends(sessions)]
