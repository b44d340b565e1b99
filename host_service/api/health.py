"""GET /health: the device this host trains on, and how many slots are free."""

from __future__ import annotations

from fastapi import APIRouter

from host_service.api.dependencies import ComponentsDep
from shared.contracts.host import DeviceView, HostHealth

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HostHealth)
def health(components: ComponentsDep) -> HostHealth:
    device = components.device
    return HostHealth(
        version=components.version,
        device=DeviceView(kind=device["kind"], name=device["name"], memory_bytes=device.get("memory_bytes")),
        capacity=components.ledger.capacity,
        sessions_in_use=components.ledger.in_use,
        signing_required=bool(components.settings.secrets),
    )
