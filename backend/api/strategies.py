"""Strategies: list the files in the strategies folder, validate a strategy's YAML."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.dependencies import StrategiesDep
from backend.api.error_handlers import error_responses, json_details
from shared.contracts.api import StrategySummary, ValidateStrategyRequest, ValidateStrategyResponse
from shared.contracts.operations import ErrorInfo
from shared.trainkit.errors import ConfigError

router = APIRouter(prefix="/api/v1/strategies", tags=["strategies"])


@router.get("", response_model=list[StrategySummary])
def list_strategies(strategies: StrategiesDep) -> list[StrategySummary]:
    """Every strategy file, valid or not (an invalid one carries its error)."""
    return [StrategySummary.model_validate(s) for s in strategies.list_strategies()]


@router.post("/validate", response_model=ValidateStrategyResponse, responses=error_responses(400, 413, 422))
def validate_strategy(body: ValidateStrategyRequest, strategies: StrategiesDep) -> ValidateStrategyResponse:
    """200 either way: ``valid`` says whether it parses; ``error`` names the field at fault."""
    try:
        summary = strategies.validate(body.strategy_yaml)
    except ConfigError as exc:
        return ValidateStrategyResponse(
            valid=False,
            error=ErrorInfo(code=exc.code, message=exc.message, details=json_details(exc.details)),
        )
    return ValidateStrategyResponse(valid=True, name=summary.get("name"), summary=summary)
