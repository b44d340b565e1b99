"""SweepService: accept a sweep, and the driver that runs it: ask Optuna for params, start each trial as
an ordinary training operation, report its per-epoch values, prune, tell the outcome, alias the best.

The driver keeps no state of its own between ticks: everything it needs is in the ``sweeps`` and
``sweep_trials`` rows, the operations and the Optuna study, so after a restart it continues where it was.
A trial the restart interrupted is told failed and not counted: a new trial takes its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from backend.adapters.db.sweeps import SqlSweepRepository
from backend.domain.operations import INTERRUPTED, Operation, OperationStatus
from backend.domain.ports import Clock, CommandCatalog, StrategyCatalog
from backend.domain.sweeps import (
    PRUNER_TOKEN,
    SWEEP_TERMINAL,
    Sweep,
    SweepStatus,
    SweepTrial,
    check_path,
    check_spec,
    grid_values,
    intermediate_of,
    objective_of,
    trial_body,
)
from backend.errors import BackendError, IllegalTransitionError, InvalidRequestError, NotFoundError
from backend.services.model_aliases import ModelAliasService
from backend.services.operations import OperationsService
from backend.services.training import TrainingService, check_name
from shared.contracts.operations import StartTrainingRequest
from shared.contracts.sweeps import ParamKind, ParamSpec, StartSweepRequest
from shared.contracts.training import Workload

if TYPE_CHECKING:  # Optuna is imported on the first sweep
    from backend.adapters.optuna_studies import OptunaStudies

logger = logging.getLogger(__name__)

SWEEP_CANCEL_TOKEN = "sweep-cancel"


class SweepNotFoundError(NotFoundError):
    code = "sweep_not_found"


def new_sweep_id() -> str:
    return "sw" + uuid.uuid4().hex[:10]


def best_alias(sweep_id: str) -> str:
    return f"sweep-{sweep_id}-best"


def _sample(spec: ParamSpec) -> Any:
    if spec.type is ParamKind.CATEGORICAL:
        return spec.choices[0] if spec.choices else None
    return int(spec.low or 0) if spec.type is ParamKind.INT else float(spec.low or 0)


class SweepService:
    def __init__(
        self,
        repo: SqlSweepRepository,
        database_url: str,
        operations: OperationsService,
        training: TrainingService,
        strategies: StrategyCatalog,
        commands: CommandCatalog,
        aliases: ModelAliasService,
        clock: Clock,
        *,
        max_trials: int,
        new_id: Callable[[], str] = new_sweep_id,
    ) -> None:
        self._repo = repo
        self._database_url = database_url
        self._studies_made: OptunaStudies | None = None
        self._ops = operations
        self._training = training
        self._strategies = strategies
        self._commands = commands
        self._aliases = aliases
        self._clock = clock
        self._max_trials = max_trials
        self._new_id = new_id
        self._importances: dict[tuple[str, int], dict[str, float] | None] = {}

    @property
    def _studies(self) -> OptunaStudies:
        """Optuna, imported on the first sweep (seconds of import a backend without sweeps never pays)."""
        if self._studies_made is None:
            from backend.adapters import optuna_studies

            self._studies_made = optuna_studies.OptunaStudies(self._database_url)
        return self._studies_made

    def has_unfinished(self) -> bool:
        return bool(self._repo.unfinished())

    # --- use cases -------------------------------------------------------------------------------

    def start_sweep(self, request: StartSweepRequest, *, submitted_by: str | None) -> Sweep:
        """Check everything a trial would need, then record the sweep and its Optuna study (202)."""
        if request.n_trials > self._max_trials:
            raise InvalidRequestError(
                f"n_trials: {request.n_trials} is above the maximum of {self._max_trials} "
                "(MODELYARD_SWEEP_MAX_TRIALS); run fewer trials",
                field="n_trials",
                limit=self._max_trials,
            )
        grid = request.sampler == "grid"
        for path, spec in request.space.items():
            check_spec(path, spec, grid=grid)
        if grid:
            size = 1
            for spec in request.space.values():
                size *= len(grid_values(spec))
            request = request.model_copy(update={"n_trials": min(request.n_trials, size)})
        base = request.base.model_dump(mode="json", exclude={"idempotency_key"})
        strategy = self._strategy_doc(request.base)
        known = self._command_params(request.base)
        for path in request.space:
            check_path(path, base, strategy, known)
        self._check_trial(base, strategy, {p: _sample(s) for p, s in request.space.items()})
        now = self._clock.now()
        sweep = Sweep(
            id=self._new_id(),
            status=SweepStatus.RUNNING,
            request={"sweep": request.model_dump(mode="json"), "strategy": strategy},
            created_at=now,
            updated_at=now,
            submitted_by=submitted_by,
        )
        self._studies.create(sweep.id, request)
        self._repo.add(sweep)
        logger.info(
            "sweep %s accepted: %d trial(s), %d at once", sweep.id, request.n_trials, request.parallelism
        )
        return sweep

    def get(self, sweep_id: str) -> Sweep:
        sweep = self._repo.get(sweep_id)
        if sweep is None:
            raise SweepNotFoundError(
                f"no sweep with id {sweep_id[:64]!r}; list sweeps with GET /api/v1/sweeps",
                sweep_id=sweep_id[:64],
            )
        return sweep

    def list_sweeps(self) -> list[Sweep]:
        return self._repo.all()

    def trials(self, sweep_id: str) -> list[SweepTrial]:
        return self._repo.trials(sweep_id)

    def operation(self, op_id: str) -> Operation | None:
        try:
            return self._ops.get(op_id) if op_id else None
        except NotFoundError:
            return None

    def importances(self, sweep: Sweep) -> dict[str, float] | None:
        done = sum(1 for t in self._repo.trials(sweep.id) if t.state == "complete")
        key = (sweep.id, done)
        if key not in self._importances:
            self._importances[key] = self._studies.importances(sweep.id, _request(sweep))
        return self._importances[key]

    def cancel(self, sweep_id: str) -> Sweep:
        """Cancel: running trials are cancelled and no new one starts (the driver finishes it)."""
        sweep = self.get(sweep_id)
        if sweep.status in SWEEP_TERMINAL:
            raise IllegalTransitionError(
                f"sweep {sweep.id} is already {sweep.status.value}; it cannot be cancelled",
                sweep_id=sweep.id,
                status=sweep.status.value,
            )
        if sweep.status is SweepStatus.RUNNING:
            sweep = self._save(sweep, status=SweepStatus.CANCELLING)
        self.advance(sweep)
        return self.get(sweep_id)

    # --- the driver's step -----------------------------------------------------------------------

    def tick(self) -> None:
        """One pass over every unfinished sweep (the driver calls it every interval)."""
        for sweep in self._repo.unfinished():
            try:
                self.advance(sweep)
            except Exception:
                logger.exception("sweep %s: a driver step failed; it is retried", sweep.id)

    def advance(self, sweep: Sweep) -> None:
        request = _request(sweep)
        trials = self._repo.trials(sweep.id)
        for trial in trials:
            if trial.state == "open":
                sweep = self._follow(sweep, request, trial, trials)
        if sweep.status in SWEEP_TERMINAL:
            return
        trials = self._repo.trials(sweep.id)
        open_trials = [t for t in trials if t.state == "open"]
        if sweep.status is SweepStatus.CANCELLING:
            for trial in open_trials:
                self._stop(trial, SWEEP_CANCEL_TOKEN)
            if not open_trials:
                self._save(sweep, status=SweepStatus.CANCELLED, completed=True)
            return
        counted = [t for t in trials if t.state != "interrupted"]
        launch = min(request.parallelism - len(open_trials), request.n_trials - len(counted))
        for _ in range(max(launch, 0)):
            self._launch(sweep, request)
        if len(counted) >= request.n_trials and not open_trials:
            self._finish(sweep, request, trials)

    def _follow(
        self, sweep: Sweep, request: StartSweepRequest, trial: SweepTrial, trials: list[SweepTrial]
    ) -> Sweep:
        op = self.operation(trial.operation_id)
        if op is None:
            self._tell(sweep, request, trial, "fail", None)
            return sweep
        metric = request.objective.metric
        if not op.is_terminal:
            values = intermediate_of(metric, op.history or _live_history(op))
            new = {k: v for k, v in values.items() if k not in trial.reported}
            if new:
                prune = self._studies.report(sweep.id, request, trial.optuna_trial_id, new)
                self._repo.put_trial(_with(trial, reported={**trial.reported, **new}))
                if prune and sweep.status is SweepStatus.RUNNING:
                    logger.info("sweep %s: trial %d pruned at step %d", sweep.id, trial.number, max(new))
                    self._stop(trial, PRUNER_TOKEN)
            return sweep
        if op.status is OperationStatus.COMPLETED:
            # A trial faster than the driver's poll never showed its steps while running: report them now,
            # so the pruner's medians count this trial at every step it reached.
            values = intermediate_of(metric, op.history)
            new = {k: v for k, v in values.items() if k not in trial.reported}
            if new:
                self._studies.report(sweep.id, request, trial.optuna_trial_id, new)
                trial = _with(trial, reported={**trial.reported, **new})
                self._repo.put_trial(trial)
            value = objective_of(metric, op.result, op.history)
            if value is None:
                return self._missing_objective(sweep, request, trial, trials, op)
            self._tell(sweep, request, trial, "complete", value)
        elif op.status is OperationStatus.PRUNED:
            self._tell(sweep, request, trial, "pruned", None)
        elif op.status is OperationStatus.FAILED and op.error is not None and op.error.code == INTERRUPTED:
            self._tell(sweep, request, trial, "interrupted", None)
        else:
            state = "cancelled" if op.status is OperationStatus.CANCELLED else "fail"
            self._tell(sweep, request, trial, state, None)
        return sweep

    def _missing_objective(
        self,
        sweep: Sweep,
        request: StartSweepRequest,
        trial: SweepTrial,
        trials: list[SweepTrial],
        op: Operation,
    ) -> Sweep:
        self._tell(sweep, request, trial, "fail", None)
        if any(t.state == "complete" for t in trials):
            return sweep  # others produced it: this trial alone failed
        produced = sorted(
            {*(op.result or {}).get("test_metrics", {}), *(k for row in op.history for k in row)}
            - {"epoch", "step"}
        )
        message = (
            f"objective metric {request.objective.metric!r} was not produced by trial {trial.number} "
            f"(operation {op.id}); it produced {produced}: give one of these (test metrics as 'test.<name>')"
        )
        logger.warning("sweep %s failed: %s", sweep.id, message)
        for other in self._repo.trials(sweep.id):
            if other.state == "open":
                self._stop(other, SWEEP_CANCEL_TOKEN)
        return self._save(sweep, status=SweepStatus.FAILED, error=message, completed=True)

    def _launch(self, sweep: Sweep, request: StartSweepRequest) -> None:
        trial_id, number, params = self._studies.ask(sweep.id, request)
        trial = SweepTrial(sweep.id, number, trial_id, "", params)
        self._repo.put_trial(trial)
        try:
            body = self._trial_request(sweep, request, params, number)
            op, _ = self._training.start_training(body, submitted_by=sweep.submitted_by)
        except (BackendError, ValidationError) as exc:
            logger.warning("sweep %s: trial %d could not start: %s", sweep.id, number, exc)
            self._tell(sweep, request, trial, "fail", None)
            return
        self._repo.put_trial(_with(trial, operation_id=op.id))
        logger.info("sweep %s: trial %d started as operation %s with %s", sweep.id, number, op.id, params)

    def _trial_request(
        self, sweep: Sweep, request: StartSweepRequest, params: dict[str, Any], number: int
    ) -> StartTrainingRequest:
        base = request.base.model_dump(mode="json", exclude={"idempotency_key"})
        body, doc = trial_body(base, sweep.request.get("strategy"), params)
        if doc is not None:
            body["strategy_yaml"] = yaml.safe_dump(doc, sort_keys=False)
            body["strategy"] = None
        body["idempotency_key"] = f"{sweep.id}-trial-{number}"
        body["tags"] = list(dict.fromkeys([*body.get("tags", []), sweep.id]))[:20]
        return StartTrainingRequest.model_validate(body)

    def _finish(self, sweep: Sweep, request: StartSweepRequest, trials: list[SweepTrial]) -> None:
        best = best_trial(trials, request.objective.direction)
        if best is None:
            failed = sum(1 for t in trials if t.state != "complete")
            self._save(sweep, status=SweepStatus.FAILED, error=f"no trial completed ({failed} failed or pruned)",
                       completed=True)  # fmt: skip
            return
        alias = None
        op = self.operation(best.operation_id)
        model = (op.result or {}).get("model") if op is not None else None
        if isinstance(model, dict) and model.get("version"):
            alias = best_alias(sweep.id)
            try:
                self._aliases.set_alias(
                    str(model["strategy"]),
                    str(model["name"]),
                    alias,
                    int(model["version"]),
                    by=sweep.submitted_by,
                )
            except BackendError as exc:
                logger.warning("sweep %s: could not alias the best model: %s", sweep.id, exc)
                alias = None
        logger.info("sweep %s completed: best trial %d, objective %s", sweep.id, best.number, best.objective)
        self._save(sweep, status=SweepStatus.COMPLETED, best=alias, completed=True)

    def _stop(self, trial: SweepTrial, by: str) -> None:
        # Finished meanwhile: the next tick reads its outcome.
        with contextlib.suppress(IllegalTransitionError, NotFoundError):
            self._training.cancel(trial.operation_id, by=by)

    def _tell(
        self, sweep: Sweep, request: StartSweepRequest, trial: SweepTrial, state: str, value: float | None
    ) -> None:
        self._studies.tell(sweep.id, request, trial.number, "complete" if state == "complete" else (
            "pruned" if state == "pruned" else "fail"), value)  # fmt: skip
        self._repo.put_trial(_with(trial, state=state, objective=value))

    def _save(
        self,
        sweep: Sweep,
        *,
        status: SweepStatus,
        error: str | None = None,
        best: str | None = None,
        completed: bool = False,
    ) -> Sweep:
        now = self._clock.now()
        updated = Sweep(
            id=sweep.id,
            status=status,
            request=sweep.request,
            created_at=sweep.created_at,
            updated_at=now,
            completed_at=now if completed else sweep.completed_at,
            error=error or sweep.error,
            best_alias=best or sweep.best_alias,
            submitted_by=sweep.submitted_by,
        )
        self._repo.save(updated)
        return updated

    # --- checks at start -------------------------------------------------------------------------

    def _strategy_doc(self, base: StartTrainingRequest) -> dict[str, Any] | None:
        if base.workload is not Workload.STRATEGY:
            return None
        if base.strategy_yaml:
            text = base.strategy_yaml
        elif base.strategy:
            text = self._strategies.read_text(check_name(base.strategy, "base.strategy"))
        else:
            raise InvalidRequestError("base: give 'strategy' or 'strategy_yaml'", field="base.strategy")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidRequestError(
                f"base: the strategy is not valid YAML: {exc}", field="base.strategy"
            ) from exc
        if not isinstance(doc, dict):
            raise InvalidRequestError("base: the strategy YAML is not a mapping", field="base.strategy")
        return doc

    def _command_params(self, base: StartTrainingRequest) -> set[str]:
        if base.workload is not Workload.COMMAND or base.command is None:
            return set()
        return set(self._commands.get(base.command.name).params)

    def _check_trial(
        self, base: dict[str, Any], strategy: dict[str, Any] | None, params: dict[str, Any]
    ) -> None:
        """A trial at the low end of every range must make a valid training request."""
        body, doc = trial_body(base, strategy, params)
        if doc is not None:
            body["strategy_yaml"] = yaml.safe_dump(doc, sort_keys=False)
            body["strategy"] = None
        try:
            self._training.resolve(StartTrainingRequest.model_validate(body))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidRequestError(
                f"space: a trial's request would be invalid at {where}: {first['msg']}", field=f"base.{where}"
            ) from exc
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"space: a trial's request would be invalid: {exc.message}",
                                      field=f"base.{exc.details.get('field', '')}") from exc  # fmt: skip


def best_trial(trials: list[SweepTrial], direction: str) -> SweepTrial | None:
    done = [t for t in trials if t.state == "complete" and t.objective is not None]
    if not done:
        return None
    pick = min if direction == "minimize" else max
    return pick(done, key=lambda t: t.objective if t.objective is not None else 0.0)


def _request(sweep: Sweep) -> StartSweepRequest:
    return StartSweepRequest.model_validate(sweep.request["sweep"])


def _live_history(op: Operation) -> tuple[dict[str, Any], ...]:
    return op.history


def _with(trial: SweepTrial, **changes: Any) -> SweepTrial:
    import dataclasses

    return dataclasses.replace(trial, **changes)


class SweepDriver:
    """Calls ``SweepService.tick`` every ``interval_s`` on a worker thread, from start to stop."""

    def __init__(self, service: SweepService, *, interval_s: float) -> None:
        self._service = service
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sweep-driver")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self._service.tick)
            await asyncio.sleep(self._interval)
