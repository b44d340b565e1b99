"""Every router of the backend, assembled once."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api import (
    commands,
    data,
    events,
    host_callbacks,
    models,
    operations,
    projects,
    ray_jobs,
    strategies,
    system,
    tokens,
    trainings,
)

root_router = APIRouter()
root_router.include_router(system.router)

api_router = APIRouter()
for module in (
    trainings,
    operations,
    projects,
    events,
    models,
    strategies,
    commands,
    data,
    tokens,
    host_callbacks,
    ray_jobs,
):
    api_router.include_router(module.router)
