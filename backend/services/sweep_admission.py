"""Admitting a sweep: every check a sweep request passes before it is recorded (a 422 naming the field
otherwise), and a trial's training request built from the base and its params."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from backend.domain.ports import CommandCatalog, StrategyCatalog
from backend.domain.sweeps import check_path, check_spec, grid_values, trial_body
from backend.errors import InvalidRequestError, NotFoundError
from backend.services.training import TrainingService, check_name
from shared.contracts.errors import first_error
from shared.contracts.operations import StartTrainingRequest
from shared.contracts.sweeps import ParamKind, ParamSpec, StartSweepRequest
from shared.contracts.training import Workload
from shared.trainkit.errors import CommandNotFoundError


class SweepAdmission:
    def __init__(
        self,
        training: TrainingService,
        strategies: StrategyCatalog,
        commands: CommandCatalog,
        *,
        max_trials: int,
    ) -> None:
        self._training = training
        self._strategies = strategies
        self._commands = commands
        self._max_trials = max_trials

    def admit(self, request: StartSweepRequest) -> tuple[StartSweepRequest, dict[str, Any] | None]:
        """The request as it will run (a grid caps ``n_trials``) and the strategy document its trials
        change; raises ``InvalidRequestError`` naming the first bad field."""
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
        return request, strategy

    def _strategy_doc(self, base: StartTrainingRequest) -> dict[str, Any] | None:
        if base.workload is not Workload.STRATEGY:
            return None
        if base.strategy_yaml:
            text = base.strategy_yaml
        elif base.strategy:
            try:
                text = self._strategies.read_text(check_name(base.strategy, "base.strategy"))
            except NotFoundError as exc:
                raise InvalidRequestError(f"base.strategy: {exc.message}", field="base.strategy") from exc
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
        try:
            return set(self._commands.get(base.command.name).params)
        except CommandNotFoundError as exc:
            raise InvalidRequestError(f"base.command.name: {exc.message}", field="base.command.name") from exc

    def _check_trial(
        self, base: dict[str, Any], strategy: dict[str, Any] | None, params: dict[str, Any]
    ) -> None:
        """A trial at the low end of every range must make a valid training request."""
        try:
            self._training.resolve(trial_request(base, strategy, params))
        except ValidationError as exc:
            where, message = first_error(exc)
            raise InvalidRequestError(
                f"space: a trial's request would be invalid at {where}: {message}", field=f"base.{where}"
            ) from exc
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"space: a trial's request would be invalid: {exc.message}",
                                      field=f"base.{exc.details.get('field', '')}") from exc  # fmt: skip


def trial_request(
    base: dict[str, Any],
    strategy: dict[str, Any] | None,
    params: dict[str, Any],
    *,
    sweep_id: str | None = None,
    number: int = 0,
) -> StartTrainingRequest:
    """The base request with ``params`` set; the strategy, changed, sent inline as ``strategy_yaml``.
    A sweep's trial is tagged with its sweep and carries idempotency key ``{sweep_id}-trial-{number}``
    (how a restart finds a trial whose operation id was never recorded)."""
    body, doc = trial_body(base, strategy, params)
    if doc is not None:
        body["strategy_yaml"] = yaml.safe_dump(doc, sort_keys=False)
        body["strategy"] = None
    if sweep_id is not None:
        body["idempotency_key"] = trial_key(sweep_id, number)
        body["tags"] = list(dict.fromkeys([*body.get("tags", []), sweep_id]))[:20]
    return StartTrainingRequest.model_validate(body)


def trial_key(sweep_id: str, number: int) -> str:
    return f"{sweep_id}-trial-{number}"


def _sample(spec: ParamSpec) -> Any:
    if spec.type is ParamKind.CATEGORICAL:
        return spec.choices[0] if spec.choices else None
    return int(spec.low or 0) if spec.type is ParamKind.INT else float(spec.low or 0)
