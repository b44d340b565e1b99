"""Every router of the backend, assembled once."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api import (
    checkpoints,
    commands,
    data,
    events,
    host_callbacks,
    model_aliases,
    models,
    operations,
    projects,
    ray_jobs,
    strategies,
    sweeps,
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
    # before models: its by-alias download must be tried before the by-number one refuses the alias
    model_aliases,
    models,
    strategies,
    commands,
    data,
    tokens,
    sweeps,
    host_callbacks,
    checkpoints,
    ray_jobs,
):
    api_router.include_router(module.router)
