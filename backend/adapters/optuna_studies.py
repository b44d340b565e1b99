"""OptunaStudies: one Optuna study per sweep, in Optuna's RDB storage on modelyard's own database.

Samplers and pruners are not stored by Optuna: they are rebuilt from the sweep's request every time a
study is loaded (at a restart too), seeded by the sweep so a resumed sweep keeps sampling the same way.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState
from sqlalchemy import event

from backend.adapters.db.engine import normalize_database_url, sqlite_pragmas
from backend.domain.sweeps import MIN_IMPORTANCE_TRIALS, grid_values
from shared.contracts.sweeps import ParamKind, ParamSpec, StartSweepRequest

logger = logging.getLogger(__name__)

optuna.logging.set_verbosity(optuna.logging.WARNING)

_STATES = {"complete": TrialState.COMPLETE, "fail": TrialState.FAIL, "pruned": TrialState.PRUNED}


def study_name(sweep_id: str) -> str:
    return f"modelyard-{sweep_id}"


def distribution(spec: ParamSpec) -> BaseDistribution:
    if spec.type is ParamKind.CATEGORICAL:
        return CategoricalDistribution(list(spec.choices or []))
    if spec.type is ParamKind.INT:
        step = int(spec.step or 1)
        return IntDistribution(int(spec.low or 0), int(spec.high or 0), log=spec.log, step=step)
    return FloatDistribution(float(spec.low or 0), float(spec.high or 0), log=spec.log, step=spec.step)


class OptunaStudies:
    def __init__(self, database_url: str, *, schema: str | None = None) -> None:
        """``schema``: PostgreSQL's search_path (the tests' own schema), as ``build_engine`` takes it.

        The storage is opened on first use: importing Optuna costs seconds a backend that runs no sweep
        should not pay at every start (its tables already exist: migration 0009 made them)."""
        self._url = normalize_database_url(database_url)
        self._schema = schema
        self._storage: optuna.storages.RDBStorage | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._loaded: dict[str, optuna.Study] = {}

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        with self._lock:
            if self._closed:
                raise RuntimeError("the Optuna studies are closed (the backend is stopping)")
            if self._storage is None:
                sqlite = self._url.startswith("sqlite")
                connect: dict[str, Any] = {"timeout": 30} if sqlite else {"connect_timeout": 5}
                if self._schema:
                    connect["options"] = f"-csearch_path={self._schema}"
                # Our migrations own ``alembic_version``: Optuna's check would read our revision as its own.
                storage = optuna.storages.RDBStorage(
                    self._url, engine_kwargs={"connect_args": connect}, skip_compatibility_check=True
                )
                if sqlite:
                    # Our own engine's pragmas: without them every report and tell waits for an fsync.
                    event.listen(storage.engine, "connect", sqlite_pragmas)
                    storage.engine.dispose()  # the connection Optuna opened had none
                self._storage = storage
            return self._storage

    def close(self) -> None:
        """Close Optuna's connections for good: a later use raises rather than open new ones that
        nothing would close."""
        with self._lock:
            self._closed = True
            if self._storage is not None:
                self._storage.engine.dispose()
                self._storage = None

    def create(self, sweep_id: str, request: StartSweepRequest) -> None:
        optuna.create_study(
            storage=self.storage,
            study_name=study_name(sweep_id),
            direction=request.objective.direction,
            load_if_exists=True,
        )

    def _study(self, sweep_id: str, request: StartSweepRequest) -> optuna.Study:
        """The sweep's study, loaded once per process: its sampler's random state must carry on from
        one trial to the next (a sampler rebuilt per trial would repeat its first sample)."""
        study = self._loaded.get(sweep_id)
        if study is None:
            study = self._load(sweep_id, request)
            self._loaded[sweep_id] = study
        return study

    def _load(self, sweep_id: str, request: StartSweepRequest) -> optuna.Study:
        # Seeded by the sweep and by how far it got, so a resumed sweep does not redraw its first params.
        done = len(self.storage.get_all_trials(self.storage.get_study_id_from_name(study_name(sweep_id))))
        seed = (zlib.crc32(sweep_id.encode()) + 7919 * done) % 2**32
        sampler: optuna.samplers.BaseSampler
        if request.sampler == "grid":
            sampler = optuna.samplers.GridSampler(
                {path: grid_values(spec) for path, spec in request.space.items()}, seed=seed
            )
        elif request.sampler == "random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=min(10, max(2, request.n_trials // 3))
            )
        # No pruner: the sweep decides pruning in memory (``backend.domain.pruning``), as Optuna's median
        # pruner would, without reading every trial's values from the storage at every epoch.
        return optuna.load_study(
            study_name=study_name(sweep_id),
            storage=self.storage,
            sampler=sampler,
            pruner=optuna.pruners.NopPruner(),
        )

    def ask(self, sweep_id: str, request: StartSweepRequest) -> tuple[int, int, dict[str, Any]]:
        """A new trial: its Optuna id, its number, and the params to train with."""
        study = self._study(sweep_id, request)
        trial = study.ask({path: distribution(spec) for path, spec in request.space.items()})
        return trial._trial_id, trial.number, dict(trial.params)

    def running(self, sweep_id: str, request: StartSweepRequest) -> list[tuple[int, int, dict[str, Any]]]:
        """The study's trials still running in Optuna: their ids, numbers and params."""
        study = self._study(sweep_id, request)
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return [(t._trial_id, t.number, dict(t.params)) for t in trials]

    def tell(
        self,
        sweep_id: str,
        request: StartSweepRequest,
        trial_id: int,
        number: int,
        state: str,
        value: float | None,
        intermediate: Mapping[int, float],
    ) -> None:
        """Record the trial's ``intermediate`` values (step -> value), then tell how it ended."""
        study = self._study(sweep_id, request)
        try:
            self._record(trial_id, intermediate)
            if state == "complete" and value is not None:
                study.tell(number, value)
            else:
                study.tell(number, state=_STATES["pruned" if state == "pruned" else "fail"])
        except (ValueError, RuntimeError) as exc:
            # Told before a restart already (ValueError; UpdateFinishedTrialError from the record), or the
            # grid sampler, its grid used up, asking the study to stop (RuntimeError, after the trial's
            # state is stored).
            logger.debug("sweep %s trial %d: %s", sweep_id, number, exc)

    def _record(self, trial_id: int, values: Mapping[int, float]) -> None:
        """``values`` in one transaction: Optuna's public ``set_trial_intermediate_value`` commits each
        step on its own, a dozen round trips at every trial's end. Optuna is pinned (pyproject.toml):
        the two private names are what that public call itself runs."""
        finite = {step: value for step, value in values.items() if math.isfinite(value)}
        if not finite:
            return
        storage = self.storage
        with _create_scoped_session(storage.scoped_session, True) as session:
            for step, value in sorted(finite.items()):
                storage._set_trial_intermediate_value_without_commit(session, trial_id, step, value)

    def importances(self, sweep_id: str, request: StartSweepRequest) -> dict[str, float] | None:
        """Optuna's parameter importances, when it can compute them (enough completed trials)."""
        study = self._study(sweep_id, request)
        completed = [t for t in study.get_trials(deepcopy=False) if t.state is TrialState.COMPLETE]
        if len(completed) < MIN_IMPORTANCE_TRIALS:
            return None
        try:
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            logger.info("no parameter importances for sweep %s: %s", sweep_id, exc)
            return None
