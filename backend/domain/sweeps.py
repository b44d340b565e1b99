"""Sweeps, pure: the search space checked against the base request, a trial's request built from its
params, and the objective read from a finished trial.

A space path is dotted: ``overrides.learning_rate`` and ``command.params.lr`` point into the base request;
``strategy.…`` points into the strategy's YAML (``strategy.labels.threshold``; list items by index). A
trial's request is the base with each path set, the strategy sent inline as ``strategy_yaml``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from backend.errors import InvalidRequestError
from shared.contracts.sweeps import ParamKind, ParamSpec

STRATEGY_PREFIX = "strategy."
PRUNER_TOKEN = "sweep-pruner"
#: Completed trials Optuna needs before it computes parameter importances.
MIN_IMPORTANCE_TRIALS = 2


class SweepStatus(StrEnum):
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


SWEEP_TERMINAL: frozenset[SweepStatus] = frozenset(
    {SweepStatus.COMPLETED, SweepStatus.FAILED, SweepStatus.CANCELLED}
)


@dataclass(frozen=True)
class Sweep:
    id: str
    status: SweepStatus
    request: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    error: str | None = None
    best_alias: str | None = None
    submitted_by: str | None = None
    #: The backend instance that drives it; only its driver starts trials (None: from before owners).
    owner_id: str | None = None


@dataclass(frozen=True)
class SweepTrial:
    sweep_id: str
    number: int
    optuna_trial_id: int
    operation_id: str
    params: dict[str, Any]
    #: Open (its operation not yet seen finished) or what it was told: complete, fail, pruned, interrupted.
    state: str = "open"
    objective: float | None = None
    #: Step -> value of the objective metric, told to Optuna when the trial ended (empty while it runs).
    reported: dict[int, float] = field(default_factory=dict)
    #: Why it failed when it has no operation to tell it: the refusal of its training request.
    error: str | None = None


class Importances(NamedTuple):
    """A sweep's parameter importances (None: Optuna cannot compute them yet), the number of completed
    trials they were computed from, and when."""

    values: dict[str, float] | None
    trials: int
    at: datetime


def importances_due(
    kept: Importances | None, completed: int, *, finished: bool, now: datetime, every_s: float
) -> bool:
    """Whether a sweep's importances are computed again, ``completed`` trials completed and ``kept``
    the last ones: only when trials completed since. While it runs, from ``MIN_IMPORTANCE_TRIALS``
    completed trials on (fewer: Optuna has nothing to fit), the first at once and then at most every
    ``every_s``; a finished sweep's once more, from all its completed trials."""
    if kept is not None and kept.trials == completed:
        return False
    if finished:
        return True
    if completed < MIN_IMPORTANCE_TRIALS:
        return False
    return kept is None or (now - kept.at).total_seconds() >= every_s


def best_alias(sweep_id: str) -> str:
    """The alias the best trial's model version gets when the sweep ends."""
    return f"sweep-{sweep_id}-best"


def best_trial(trials: list[SweepTrial], direction: str) -> SweepTrial | None:
    done = [t for t in trials if t.state == "complete" and t.objective is not None]
    if not done:
        return None
    pick = min if direction == "minimize" else max
    return pick(done, key=lambda t: t.objective if t.objective is not None else 0.0)


def _field(path: str) -> str:
    return f"space.{path}"


def check_spec(path: str, spec: ParamSpec, *, grid: bool) -> None:
    """A 422 naming the path for an empty or inverted range, a log range through 0, no choices."""
    where = _field(path)
    if spec.type is ParamKind.CATEGORICAL:
        if not spec.choices:
            raise InvalidRequestError(
                f"{where}: a categorical needs at least one value in 'choices'", field=where
            )
        return
    if spec.low is None or spec.high is None:
        raise InvalidRequestError(f"{where}: a {spec.type.value} needs 'low' and 'high'", field=where)
    if not (math.isfinite(spec.low) and math.isfinite(spec.high)):
        raise InvalidRequestError(f"{where}: 'low' and 'high' must be finite numbers", field=where)
    if spec.type is ParamKind.INT and (spec.low != int(spec.low) or spec.high != int(spec.high)):
        raise InvalidRequestError(f"{where}: an int range needs whole-number bounds", field=where)
    if spec.low >= spec.high:
        raise InvalidRequestError(
            f"{where}: the range [{spec.low}, {spec.high}] is empty or inverted; give low < high", field=where
        )
    if spec.log and spec.low <= 0:
        raise InvalidRequestError(f"{where}: a log range needs low > 0 (got {spec.low})", field=where)
    if spec.log and spec.step is not None:
        raise InvalidRequestError(f"{where}: 'step' and 'log' do not combine; drop one", field=where)
    if grid and spec.type is ParamKind.FLOAT and spec.step is None:
        raise InvalidRequestError(
            f"{where}: the grid sampler needs a 'step' for a float (or use a categorical)", field=where
        )


def grid_values(spec: ParamSpec) -> list[Any]:
    if spec.type is ParamKind.CATEGORICAL:
        return list(spec.choices or [])
    low, high = float(spec.low or 0), float(spec.high or 0)
    step = spec.step or 1.0
    count = math.floor((high - low) / step + 1e-9) + 1
    values = [low + i * step for i in range(count)]
    return [round(v) for v in values] if spec.type is ParamKind.INT else values


def lookup(document: Any, parts: Sequence[str]) -> bool:
    """Whether the path ``parts`` exists in the nested dicts/lists ``document``."""
    node = document
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def assign(document: Any, parts: Sequence[str], value: Any) -> None:
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def check_path(
    path: str, base: Mapping[str, Any], strategy: Mapping[str, Any] | None, known: set[str]
) -> None:
    """422 unless ``path`` names a value of the base request, its strategy YAML, or its command's params
    (``known``: the command template's param names)."""
    where = _field(path)
    parts = path.split(".")
    if path.startswith(STRATEGY_PREFIX) and strategy is not None:
        if not lookup(strategy, parts[1:]):
            raise InvalidRequestError(
                f"{where}: the strategy YAML has no value at {'.'.join(parts[1:])!r}", field=where
            )
        return
    if parts[:2] == ["command", "params"] and len(parts) == 3 and parts[2] in known:
        return
    if parts[0] in ("overrides",) and len(parts) == 2 and parts[1] in OVERRIDE_FIELDS:
        return
    if not lookup(base, parts):
        raise InvalidRequestError(
            f"{where}: the base request has no value at {path!r}; use overrides.<field>, "
            "command.params.<param> or strategy.<path into the strategy YAML>",
            field=where,
        )


OVERRIDE_FIELDS = frozenset({"epochs", "batch_size", "learning_rate", "early_stopping_patience", "seed"})


def trial_body(
    base: Mapping[str, Any], strategy: Mapping[str, Any] | None, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The base request and strategy document with every param set (copies; the inputs stay)."""
    body = copy.deepcopy(dict(base))
    doc = copy.deepcopy(dict(strategy)) if strategy is not None else None
    for path, value in params.items():
        parts = path.split(".")
        if path.startswith(STRATEGY_PREFIX) and doc is not None:
            assign(doc, parts[1:], value)
        else:
            assign(body, parts, value)
    return body, doc


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def objective_of(
    metric: str, result: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]
) -> float | None:
    """The objective of a finished trial: a test metric (``test.x`` or ``x``), a command's last metric,
    else the metric of the last history row that has it; None when the trial produced none."""
    result = result or {}
    test = result.get("test_metrics") or {}
    name = metric.removeprefix("test.")
    if isinstance(test, Mapping) and _number(test.get(name)) is not None:
        return _number(test.get(name))
    if metric.startswith("test."):
        return None
    command = result.get("command") or {}
    last = command.get("last_metrics") if isinstance(command, Mapping) else None
    if isinstance(last, Mapping) and _number(last.get(metric)) is not None:
        return _number(last.get(metric))
    for row in reversed(list(history) or list(result.get("history") or [])):
        if isinstance(row, Mapping) and _number(row.get(metric)) is not None:
            return _number(row.get(metric))
    return None


def _step_value(metric: str, row: Mapping[str, Any], index: int) -> tuple[int, float] | None:
    """The step and value of the metric in history row ``index`` (None when the row has no value)."""
    value = _number(row.get(metric))
    if value is None:
        return None
    step = row.get("epoch", row.get("step", index))
    return (int(step) if isinstance(step, int | float) else index), value


def intermediate_of(metric: str, history: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Step -> value of the metric in the history rows (epoch rows by epoch, command rows by step)."""
    values: dict[int, float] = {}
    for index, row in enumerate(history):
        found = _step_value(metric, row, index)
        if found is not None:
            values[found[0]] = found[1]
    return values


@dataclass
class RunningValues:
    """A running trial's values of ``metric`` (step -> value) as :func:`intermediate_of` reads them, kept
    up to date from its growing history a new row at a time: the pruner asks at every epoch or step, and
    re-reading the whole history there made a 10k-step trial's rows cost quadratic time.

    A history rewritten rather than grown (a resumed attempt drops its later epochs; a long one is thinned
    to every other row) no longer holds the last row read at its place: it is read again from the start.
    """

    metric: str
    values: dict[int, float] = field(default_factory=dict)
    #: The last step read, and the lowest and highest value so far (None: no value yet).
    step: int | None = None
    low: float | None = None
    high: float | None = None
    rows: int = 0
    _last: Mapping[str, Any] | None = field(default=None, repr=False)

    def read(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Take in the rows of ``history`` not read yet (all of them when it was rewritten)."""
        if len(history) < self.rows or (self.rows and history[self.rows - 1] is not self._last):
            self.values, self.step, self.low, self.high, self.rows = {}, None, None, None, 0
        for index in range(self.rows, len(history)):
            found = _step_value(self.metric, history[index], index)
            if found is not None:
                self._add(*found)
        self.rows = len(history)
        self._last = history[-1] if history else None

    def _add(self, step: int, value: float) -> None:
        replaced = step in self.values
        self.values[step] = value
        self.step = step if self.step is None else max(self.step, step)
        if replaced:  # a step given again: its earlier value no longer counts
            self.low, self.high = min(self.values.values()), max(self.values.values())
        else:
            self.low = value if self.low is None else min(self.low, value)
            self.high = value if self.high is None else max(self.high, value)


def trial_values(trial: SweepTrial, metric: str, history: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """A trial's values by step: its operation's ``history`` while it runs, what Optuna was told once it
    ended (the values reach Optuna when the trial ends)."""
    return intermediate_of(metric, history) if trial.state == "open" else dict(trial.reported)
