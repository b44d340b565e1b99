"""What routes depend on, as ``Annotated`` aliases; the lifespan puts the components on ``app.state``."""

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


def components(request: Request) -> HostComponents:
    found: HostComponents = request.app.state.components
    return found


def sessions(request: Request) -> SessionService:
    return components(request).sessions


ComponentsDep = Annotated[HostComponents, Depends(components)]
SessionsDep = Annotated[SessionService, Depends(sessions)]
