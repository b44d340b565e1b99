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

#: In the order the app tries them. Each is included into the app itself, not into an intermediate
#: router: FastAPI walks every level of nesting for every request (a level costs the hot polling
#: path, GET /api/v1/operations/{id}, measurable CPU), and the polled routes come first.
ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (
        system,  # /health
        operations,
        trainings,
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
    )
)
