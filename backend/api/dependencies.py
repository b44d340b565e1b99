"""What routes depend on, as ``Annotated`` aliases over the components built by the lifespan."""

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


def get_components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


def get_caller(request: Request) -> str | None:
    """The name of the API token the request came with; None when tokens are not required."""
    name = request.scope.get(CALLER_KEY)
    return name if isinstance(name, str) else None


def get_tokens(request: Request) -> TokenService:
    return get_components(request).tokens


def get_operations(request: Request) -> OperationsService:
    return get_components(request).operations


def get_training(request: Request) -> TrainingService:
    return get_components(request).training


def get_models(request: Request) -> ModelStore:
    return get_components(request).models


def get_strategies(request: Request) -> StrategyCatalog:
    return get_components(request).strategies


def get_commands(request: Request) -> CommandCatalog:
    return get_components(request).commands


def get_datasets(request: Request) -> DatasetCatalog:
    return get_components(request).datasets


def get_aliases(request: Request) -> ModelAliasService:
    return get_components(request).aliases


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
