"""What routes depend on, as ``Annotated`` aliases over the components built by the lifespan.

The dependencies are ``async def``: each is an attribute lookup, and FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency on every request (a loaded event loop paid
0.5-2 ms for it on each poll and callback). What does I/O stays a plain ``def`` (``ray_jobs.job_operation``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.api.access import CALLER_KEY
from backend.components import Components
from backend.domain.ports import CommandCatalog, DatasetCatalog, ModelStore, StrategyCatalog
from backend.services.access_tokens import TokenService
from backend.services.model_aliases import ModelAliasService
from backend.services.operations import OperationsService
from backend.services.training import TrainingService


def components_of(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


async def get_components(request: Request) -> Components:
    return components_of(request)


async def get_caller(request: Request) -> str | None:
    """The name of the API token the request came with; None when tokens are not required."""
    name = request.scope.get(CALLER_KEY)
    return name if isinstance(name, str) else None


async def get_tokens(request: Request) -> TokenService:
    return components_of(request).tokens


async def get_operations(request: Request) -> OperationsService:
    return components_of(request).operations


async def get_training(request: Request) -> TrainingService:
    return components_of(request).training


async def get_models(request: Request) -> ModelStore:
    return components_of(request).models


async def get_strategies(request: Request) -> StrategyCatalog:
    return components_of(request).strategies


async def get_commands(request: Request) -> CommandCatalog:
    return components_of(request).commands


async def get_datasets(request: Request) -> DatasetCatalog:
    return components_of(request).datasets


async def get_aliases(request: Request) -> ModelAliasService:
    return components_of(request).aliases


ComponentsDep = Annotated[Components, Depends(get_components)]
OperationsDep = Annotated[OperationsService, Depends(get_operations)]
TrainingDep = Annotated[TrainingService, Depends(get_training)]
ModelsDep = Annotated[ModelStore, Depends(get_models)]
StrategiesDep = Annotated[StrategyCatalog, Depends(get_strategies)]
DatasetsDep = Annotated[DatasetCatalog, Depends(get_datasets)]
CommandsDep = Annotated[CommandCatalog, Depends(get_commands)]
CallerDep = Annotated[str | None, Depends(get_caller)]
TokensDep = Annotated[TokenService, Depends(get_tokens)]
AliasesDep = Annotated[ModelAliasService, Depends(get_aliases)]
