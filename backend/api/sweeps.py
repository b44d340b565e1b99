"""Sweeps: start a hyperparameter search over a training request, follow it, cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from backend.api.dependencies import CallerDep, components_of
from backend.api.error_handlers import error_responses
from backend.domain.operations import OperationSummary
from backend.domain.sweeps import SweepTrial, trial_values
from backend.services.sweeps import SweepService, SweepSnapshot
from shared.contracts.results import ModelRefView, lenient
from shared.contracts.sweeps import (
    Objective,
    StartSweepRequest,
    StartSweepResponse,
    SweepList,
    SweepStatusName,
    SweepTrialView,
    SweepView,
)

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"])

SweepId = Annotated[str, Path(min_length=1, max_length=64)]


async def get_sweeps(request: Request) -> SweepService:
    return components_of(request).sweeps


SweepsDep = Annotated[SweepService, Depends(get_sweeps)]


def trial_view(trial: SweepTrial, op: OperationSummary | None, metric: str) -> SweepTrialView:
    state = op.status.value if op is not None else ("failed" if trial.state != "open" else "pending")
    model = op.model if op is not None else None
    return SweepTrialView(
        number=trial.number,
        operation_id=trial.operation_id,
        status=state,
        params=trial.params,
        objective=trial.objective,
        intermediate=trial_values(trial, metric, op.history if op is not None else ()),
        model=lenient(ModelRefView, model) if isinstance(model, dict) and "version" in model else None,
        error=trial.error or (op.error_message if op is not None and state == "failed" else None),
    )


def sweep_view(snapshot: SweepSnapshot, *, detail: bool) -> SweepView:
    sweep, trials, ops = snapshot.sweep, snapshot.trials, snapshot.operations
    request = StartSweepRequest.model_validate(sweep.request["sweep"])
    metric = request.objective.metric
    views = [trial_view(t, ops.get(t.operation_id), metric) for t in trials] if detail else []
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    best, importances = snapshot.best, snapshot.importances
    return SweepView(
        sweep_id=sweep.id,
        name=request.name,
        status=SweepStatusName(sweep.status.value),
        objective=Objective.model_validate(request.objective.model_dump()),
        n_trials=request.n_trials,
        parallelism=request.parallelism,
        sampler=request.sampler,
        pruner=request.pruner,
        space=request.space,
        created_at=sweep.created_at,
        completed_at=sweep.completed_at,
        counts=counts,
        best=trial_view(best, ops.get(best.operation_id), metric) if best is not None else None,
        best_alias=sweep.best_alias,
        error=sweep.error,
        submitted_by=sweep.submitted_by,
        trials=views,
        importances=importances.values if importances is not None else None,
        importances_trials=importances.trials if importances is not None and importances.values else None,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartSweepResponse,
    responses=error_responses(400, 404, 422),
)
def start_sweep(
    body: StartSweepRequest, sweeps: SweepsDep, response: Response, caller: CallerDep
) -> StartSweepResponse:
    """Accept a sweep: every space path, range and the base request are checked now (422 naming the
    field); each trial then runs as an ordinary training operation tagged with the sweep id."""
    sweep = sweeps.start_sweep(body, submitted_by=caller)
    link = f"/api/v1/sweeps/{sweep.id}"
    response.headers["Location"] = link
    return StartSweepResponse(sweep_id=sweep.id, status=SweepStatusName(sweep.status.value), link=link)


@router.get("", response_model=SweepList)
def list_sweeps(sweeps: SweepsDep) -> SweepList:
    """Every sweep, newest first, with its trial counts and best trial (no trial list)."""
    return SweepList(items=[sweep_view(s, detail=False) for s in sweeps.snapshots()])


@router.get("/{sweep_id}", response_model=SweepView, responses=error_responses(404))
def get_sweep(sweep_id: SweepId, sweeps: SweepsDep) -> SweepView:
    """One sweep: its trials (params, objective, status, values reported per step), the best trial
    and, once Optuna can compute them, the parameter importances (while the sweep runs: as soon as two
    trials completed, then at most once a minute, in the background; ``importances_trials`` says from
    how many trials)."""
    return sweep_view(sweeps.snapshot(sweeps.get(sweep_id)), detail=True)


@router.post("/{sweep_id}/cancel", response_model=SweepView, responses=error_responses(404, 409))
def cancel_sweep(sweep_id: SweepId, sweeps: SweepsDep) -> SweepView:
    """Cancel: running trials are cancelled and no new one starts; 409 when it has finished."""
    return sweep_view(sweeps.snapshot(sweeps.cancel(sweep_id)), detail=True)
