"""SweepService: accept a sweep, and drive it: ask Optuna for params, start each trial as an ordinary
training operation, report its per-epoch values, prune, tell the outcome, alias the best.

Driving keeps no state of its own between steps: everything it needs is in the ``sweeps`` and
``sweep_trials`` rows, the operations and the Optuna study, so after a restart it continues where it was.
A trial the restart interrupted is told failed and not counted: a new trial takes its place. Each sweep
has an owner, the backend instance that drives it (:mod:`backend.services.sweep_driver` calls
``advance`` as its trials' events arrive); a sweep whose owner's lease is gone is adopted by the next
backend that looks, which first settles the trials its owner left half-started (``_recover``).

Pruning is decided in memory (:class:`~backend.domain.pruning.MedianPruning`, Optuna's median rule)
against the completed trials' values as the last pass read them, on every epoch event of a trial: an
epoch costs the training beside it microseconds, not a pass through Optuna's storage. A trial's values
reach Optuna in one transaction when it ends; while it runs they are its operation's history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from backend.adapters.db.sweeps import SqlSweepRepository
from backend.domain.instances import Liveness
from backend.domain.operations import INTERRUPTED, Operation, OperationStatus, OperationSummary
from backend.domain.ports import Clock, CommandCatalog, StrategyCatalog
from backend.domain.pruning import MedianPruning
from backend.domain.sweeps import (
    PRUNER_TOKEN,
    SWEEP_TERMINAL,
    Importances,
    RunningValues,
    Sweep,
    SweepStatus,
    SweepTrial,
    best_alias,
    best_trial,
    importances_due,
    intermediate_of,
    objective_of,
)
from backend.errors import BackendError, IllegalTransitionError, NotFoundError
from backend.services.model_aliases import ModelAliasService
from backend.services.operations import OperationsService
from backend.services.sweep_admission import SweepAdmission, trial_key, trial_request
from backend.services.training import TrainingService
from shared.contracts.errors import first_error
from shared.contracts.sweeps import StartSweepRequest
from shared.trainkit.errors import TrainkitError

if TYPE_CHECKING:  # Optuna is imported on the first sweep
    from backend.adapters.optuna_studies import OptunaStudies

logger = logging.getLogger(__name__)

SWEEP_CANCEL_TOKEN = "sweep-cancel"


class SweepNotFoundError(NotFoundError):
    code = "sweep_not_found"


#: How often a running sweep's parameter importances are recomputed at most, the first as soon as
#: enough trials completed. A computation fits Optuna's fANOVA random forest (a tenth of a second and
#: more of CPU; the first in a process imports scikit-learn, a second and more): once per completed
#: trial it took a sweep of short trials' CPU from the trials beside it (issue 14). A running sweep's
#: are computed on a thread of their own, the view that asked answering the previous ones; a finished
#: sweep's once, by the view that asks first.
IMPORTANCES_REFRESH_S = 60.0
#: Sweeps whose importances are kept (the most recently computed).
IMPORTANCES_KEPT = 64
#: How long a finished sweep's view waits for a running sweep's computation to end before it answers
#: the importances it has (a computation takes seconds at most).
IMPORTANCES_WAIT_S = 30.0


class SweepSnapshot(NamedTuple):
    """A sweep as its views show it, read in the same few statements whatever its number of trials: its
    trials, the best one, the operations of those shown (each trial's; only the best's in a list) and
    its importances (None in a list)."""

    sweep: Sweep
    trials: list[SweepTrial]
    best: SweepTrial | None
    operations: dict[str, OperationSummary]
    importances: Importances | None


class Pruning(NamedTuple):
    """A median-pruned sweep's rule, and the metric its trials' values are read from."""

    metric: str
    rule: MedianPruning


def new_sweep_id() -> str:
    return "sw" + uuid.uuid4().hex[:10]


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
        liveness: Callable[[], Liveness],
        new_id: Callable[[], str] = new_sweep_id,
    ) -> None:
        """``liveness``: which backend instances are alive now (the instance lease's view)."""
        self._repo = repo
        self._database_url = database_url
        self._studies_made: OptunaStudies | None = None
        self._ops = operations
        self._training = training
        self._admission = SweepAdmission(training, strategies, commands, max_trials=max_trials)
        self._aliases = aliases
        self._clock = clock
        self._liveness = liveness
        self._new_id = new_id
        self._me = operations.instance_id
        #: Sweep id -> its importances as last computed (oldest first); one computation at a time, a
        #: running sweep's on the importances thread (which releases the lock when it is done).
        self._importances: dict[str, Importances] = {}
        self._importances_lock = threading.Lock()
        self._fitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-importances")
        #: Trial operation id -> its sweep id, for the trials this backend drives (read by the driver's
        #: event listener on any thread: single dict operations only).
        self._watched: dict[str, str] = {}
        #: Sweep id -> its pruning rule against its completed trials, for the median-pruned sweeps this
        #: backend drives (replaced whole by each pass, read by the event listener on any thread).
        self._pruning: dict[str, Pruning] = {}
        #: Trial operation id -> its values so far as the event listener last read them.
        self._running: dict[str, RunningValues] = {}
        self._running_lock = threading.Lock()
        #: Sweeps whose half-started trials this process has settled since it began driving them.
        self._recovered: set[str] = set()
        self._wake: Callable[[str], None] = lambda _sweep_id: None

    @property
    def _studies(self) -> OptunaStudies:
        """Optuna, imported on the first sweep (seconds of import a backend without sweeps never pays)."""
        if self._studies_made is None:
            from backend.adapters import optuna_studies

            self._studies_made = optuna_studies.OptunaStudies(self._database_url)
        return self._studies_made

    def close(self) -> None:
        """Close Optuna's connections (at shutdown, after the driver stopped), after the importances
        computation under way if there is one."""
        self._fitter.shutdown(wait=True)
        if self._studies_made is not None:
            self._studies_made.close()

    def on_wake(self, wake: Callable[[str], None]) -> None:
        """``wake(sweep_id)`` when a sweep should be advanced now (started, cancelled)."""
        self._wake = wake

    def watched(self, op_id: str) -> str | None:
        """The sweep of trial operation ``op_id`` when this backend drives it, else None."""
        return self._watched.get(op_id)

    def prunes(self, op: Operation) -> bool:
        """Whether the pruner stops trial ``op`` on the values in its history. In memory, so the event
        listener asks it on the training's own thread at every new history row; the driver then stops
        the trial. Each row is read once: the trial's values so far are kept between the calls."""
        pruning = self._pruning_of(op)
        if pruning is None:
            return False
        with self._running_lock:  # a remote trial's events may come from more than one thread
            if op.id not in self._watched:
                return False  # told meanwhile: keep nothing for it
            values = self._running.get(op.id)
            if values is None or values.metric != pruning.metric:
                values = self._running[op.id] = RunningValues(pruning.metric)
            values.read(op.history)
            step, best = values.step, values.high if pruning.rule.maximize else values.low
        return step is not None and best is not None and pruning.rule.should_prune_at(step, best)

    def _pruning_of(self, op: Operation) -> Pruning | None:
        sweep_id = self._watched.get(op.id)
        return self._pruning.get(sweep_id) if sweep_id is not None else None

    # --- use cases -------------------------------------------------------------------------------

    def start_sweep(self, request: StartSweepRequest, *, submitted_by: str | None) -> Sweep:
        """Check everything a trial would need, then record the sweep and its Optuna study (202)."""
        request, strategy = self._admission.admit(request)
        now = self._clock.now()
        sweep = Sweep(
            id=self._new_id(),
            status=SweepStatus.RUNNING,
            request={"sweep": request.model_dump(mode="json"), "strategy": strategy},
            created_at=now,
            updated_at=now,
            submitted_by=submitted_by,
            owner_id=self._me,
        )
        self._studies.create(sweep.id, request)
        self._repo.add(sweep)
        logger.info(
            "sweep %s accepted: %d trial(s), %d at once", sweep.id, request.n_trials, request.parallelism
        )
        self._wake(sweep.id)
        return sweep

    def get(self, sweep_id: str) -> Sweep:
        sweep = self._repo.get(sweep_id)
        if sweep is None:
            raise SweepNotFoundError(
                f"no sweep with id {sweep_id[:64]!r}; list sweeps with GET /api/v1/sweeps",
                sweep_id=sweep_id[:64],
            )
        return sweep

    def snapshot(self, sweep: Sweep) -> SweepSnapshot:
        """``sweep`` with every trial's operation (an open trial's with its history: its values so far)
        and its importances."""
        trials = self._repo.trials(sweep.id)
        ops = self._ops.summaries(
            (t.operation_id for t in trials if t.operation_id),
            histories=(t.operation_id for t in trials if t.operation_id and t.state == "open"),
        )
        best = best_trial(trials, _request(sweep).objective.direction)
        return SweepSnapshot(sweep, trials, best, ops, self.importances(sweep, trials))

    def snapshots(self) -> list[SweepSnapshot]:
        """Every sweep (the 200 newest), newest first, with its best trial's operation only."""
        listed = self._repo.all()
        trials = self._repo.trials_of([s.id for s in listed])
        bests = {s.id: best_trial(trials[s.id], _request(s).objective.direction) for s in listed}
        ops = self._ops.summaries(b.operation_id for b in bests.values() if b is not None and b.operation_id)
        return [SweepSnapshot(s, trials[s.id], bests[s.id], ops, None) for s in listed]

    def operation(self, op_id: str) -> Operation | None:
        try:
            return self._ops.get(op_id) if op_id else None
        except NotFoundError:
            return None

    def importances(self, sweep: Sweep, trials: list[SweepTrial]) -> Importances | None:
        """The sweep's parameter importances, computed again when :func:`importances_due` says so:
        a finished sweep's here (waiting for a computation under way first), a running sweep's on the
        importances thread, this view answering the previous ones (None when there are none yet)."""
        done = sum(1 for t in trials if t.state == "complete")
        kept = self._importances.get(sweep.id)
        finished = sweep.status in SWEEP_TERMINAL
        now = self._clock.now()
        if not importances_due(kept, done, finished=finished, now=now, every_s=IMPORTANCES_REFRESH_S):
            return kept
        if not finished:
            self._fit_later(sweep, done)
            return kept
        if not self._importances_lock.acquire(timeout=IMPORTANCES_WAIT_S):
            return kept
        try:
            kept = self._importances.get(sweep.id)
            if kept is not None and kept.trials == done:
                return kept  # another view computed them meanwhile
            return self._fit(sweep, done)
        finally:
            self._importances_lock.release()

    def _fit_later(self, sweep: Sweep, done: int) -> None:
        """Compute ``sweep``'s importances on the importances thread, unless one computes already (a
        later view asks again) or one just stored made it not due any more."""
        if not self._importances_lock.acquire(blocking=False):
            return
        kept = self._importances.get(sweep.id)
        now = self._clock.now()
        if not importances_due(kept, done, finished=False, now=now, every_s=IMPORTANCES_REFRESH_S):
            self._importances_lock.release()
            return
        try:
            self._fitter.submit(self._fit_and_release, sweep, done)
        except RuntimeError:  # shut down
            self._importances_lock.release()

    def _fit_and_release(self, sweep: Sweep, done: int) -> None:
        try:
            self._fit(sweep, done)
        except Exception:
            logger.exception("sweep %s: its parameter importances could not be computed", sweep.id)
        finally:
            self._importances_lock.release()

    def _fit(self, sweep: Sweep, done: int) -> Importances:
        fresh = Importances(self._studies.importances(sweep.id, _request(sweep)), done, self._clock.now())
        self._importances.pop(sweep.id, None)
        self._importances[sweep.id] = fresh  # the most recent last
        while len(self._importances) > IMPORTANCES_KEPT:
            self._importances.pop(next(iter(self._importances)))
        return fresh

    def cancel(self, sweep_id: str) -> Sweep:
        """Cancel: running trials are cancelled at once (through any backend) and no new one starts;
        the owner's driver ends the sweep ``cancelled`` when the last trial has stopped."""
        sweep = self.get(sweep_id)
        if sweep.status is SweepStatus.RUNNING:
            self._save(sweep, status=SweepStatus.CANCELLING)
            sweep = self.get(sweep_id)
        if sweep.status in SWEEP_TERMINAL:
            raise IllegalTransitionError(
                f"sweep {sweep.id} is already {sweep.status.value}; it cannot be cancelled",
                sweep_id=sweep.id,
                status=sweep.status.value,
            )
        for trial in self._repo.trials(sweep.id):
            if trial.state == "open" and trial.operation_id:
                self._stop(trial, SWEEP_CANCEL_TOKEN)
        self._wake(sweep.id)
        return sweep

    # --- driving ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """One pass over every unfinished sweep: adopt those whose owner is dead, advance the own ones
        (the driver's slow safety-net poll; events advance a sweep between passes)."""
        live: Liveness | None = None
        for sweep in self._repo.unfinished():
            if sweep.owner_id != self._me:
                live = live or self._liveness()
                if not live.is_dead(sweep.owner_id) or not self._adopt(sweep):
                    self._recovered.discard(sweep.id)  # another backend drives it now
                    self._pruning.pop(sweep.id, None)
                    continue
            self._advance_logged(sweep)

    def advance_sweeps(self, sweep_ids: Iterable[str]) -> None:
        """Advance these sweeps now (their trials reported something), those this backend owns."""
        for sweep_id in sweep_ids:
            sweep = self._repo.get(sweep_id)
            if sweep is not None and sweep.owner_id == self._me and sweep.status not in SWEEP_TERMINAL:
                self._advance_logged(sweep)

    def _adopt(self, sweep: Sweep) -> bool:
        if not self._repo.adopt(sweep.id, previous_owner=sweep.owner_id, new_owner=self._me):
            return False
        self._recovered.discard(sweep.id)
        logger.warning("sweep %s of backend %s adopted by backend %s", sweep.id, sweep.owner_id, self._me)
        return True

    def _advance_logged(self, sweep: Sweep) -> None:
        try:
            self.advance(sweep)
        except Exception:
            logger.exception("sweep %s: a driver step failed; it is retried", sweep.id)

    def advance(self, sweep: Sweep) -> None:
        """Follow the open trials (report, prune, tell), then start trials up to ``parallelism`` or end
        the sweep. Only the owner's driver thread calls it."""
        request = _request(sweep)
        if sweep.id not in self._recovered:
            self._recover(sweep, request)
            self._recovered.add(sweep.id)
        trials = self._repo.trials(sweep.id)
        self._keep_pruning(sweep, request, trials)
        for trial in trials:
            if trial.state == "open":
                sweep = self._follow(sweep, request, trial, trials)
        while sweep.status not in SWEEP_TERMINAL:
            trials = self._repo.trials(sweep.id)
            self._keep_pruning(sweep, request, trials)
            open_trials = [t for t in trials if t.state == "open"]
            counted = [t for t in trials if t.state != "interrupted"]
            if sweep.status is SweepStatus.CANCELLING:
                for trial in open_trials:
                    self._stop(trial, SWEEP_CANCEL_TOKEN)
                if not open_trials:
                    self._save(sweep, status=SweepStatus.CANCELLED, completed=True)
                return
            if len(counted) >= request.n_trials and not open_trials:
                self._finish(sweep, request, trials)
                return
            if len(open_trials) >= request.parallelism or len(counted) >= request.n_trials:
                return
            self._launch(sweep, request)  # adds one trial, open or failed: the loop ends
            sweep = self.get(sweep.id)  # cancelled meanwhile: start no more

    def _keep_pruning(self, sweep: Sweep, request: StartSweepRequest, trials: list[SweepTrial]) -> None:
        """The rule against the completed trials as just read: a trial completes in a pass, so the
        rule is up to date before the next trial's first epoch."""
        if request.pruner != "median":
            return
        completed = tuple(t.reported for t in trials if t.state == "complete")
        rule = MedianPruning(completed, maximize=request.objective.direction == "maximize")
        self._pruning[sweep.id] = Pruning(request.objective.metric, rule)

    def _recover(self, sweep: Sweep, request: StartSweepRequest) -> None:
        """Settle what a crash between asking Optuna for a trial and recording its operation left: a
        trial row without its operation id gets it back (found by the trial's idempotency key) or is
        told failed; an Optuna trial with no row is told failed. Both are ``interrupted``: not counted,
        a new trial takes their place."""
        trials = {t.number: t for t in self._repo.trials(sweep.id)}
        for trial in trials.values():
            if trial.state != "open" or trial.operation_id:
                continue
            op = self._ops.find_by_idempotency_key(trial_key(sweep.id, trial.number))
            if op is not None:
                logger.warning("sweep %s: trial %d found as operation %s", sweep.id, trial.number, op.id)
                self._repo.put_trial(_with(trial, operation_id=op.id))
            else:
                logger.warning("sweep %s: trial %d never started; told failed", sweep.id, trial.number)
                self._tell(sweep, request, trial, "interrupted", None)
        for trial_id, number, params in self._studies.running(sweep.id, request):
            if number not in trials:
                logger.warning("sweep %s: Optuna trial %d has no operation; told failed", sweep.id, number)
                orphan = SweepTrial(sweep.id, number, trial_id, "", params)
                self._tell(sweep, request, orphan, "interrupted", None)

    def _follow(
        self, sweep: Sweep, request: StartSweepRequest, trial: SweepTrial, trials: list[SweepTrial]
    ) -> Sweep:
        op = self.operation(trial.operation_id)
        if op is None:
            self._tell(sweep, request, trial, "fail", None)
            return sweep
        self._watched[op.id] = sweep.id
        if not op.is_terminal:
            # Once per pass, not per row: its values read afresh (the listener's are its own).
            pruning = self._pruning_of(op) if sweep.status is SweepStatus.RUNNING else None
            values = intermediate_of(request.objective.metric, op.history) if pruning is not None else {}
            if pruning is not None and pruning.rule.should_prune(values):
                logger.info("sweep %s: trial %d pruned at step %s", sweep.id, trial.number, max(values))
                self._stop(trial, PRUNER_TOKEN)
            return sweep
        # Every step it reached, its last ones too: the values Optuna records and the medians count.
        trial = _with(trial, reported=intermediate_of(request.objective.metric, op.history))
        if op.status is OperationStatus.COMPLETED:
            value = objective_of(request.objective.metric, op.result, op.history)
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
        # A crash between any two of these steps is settled by ``_recover`` on restart or adoption.
        trial_id, number, params = self._studies.ask(sweep.id, request)
        trial = SweepTrial(sweep.id, number, trial_id, "", params)
        self._repo.put_trial(trial)
        try:
            base = request.base.model_dump(mode="json", exclude={"idempotency_key"})
            body = trial_request(
                base, sweep.request.get("strategy"), params, sweep_id=sweep.id, number=number
            )
            op, _ = self._training.start_training(body, submitted_by=sweep.submitted_by)
        except (BackendError, TrainkitError, ValidationError) as exc:
            # Its params make an invalid training (a strategy they break): a failed trial, counted.
            reason = f"its training could not start: {_refusal(exc)}"
            logger.warning("sweep %s: trial %d: %s", sweep.id, number, reason)
            self._tell(sweep, request, _with(trial, error=reason), "fail", None)
            return
        self._watched[op.id] = sweep.id
        self._repo.put_trial(_with(trial, operation_id=op.id))
        logger.info("sweep %s: trial %d started as operation %s with %s", sweep.id, number, op.id, params)

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
        # Finished meanwhile: its terminal event (or the next poll) reads its outcome.
        with contextlib.suppress(IllegalTransitionError, NotFoundError):
            self._training.cancel(trial.operation_id, by=by)

    def _tell(
        self, sweep: Sweep, request: StartSweepRequest, trial: SweepTrial, state: str, value: float | None
    ) -> None:
        optuna_state = state if state in ("complete", "pruned") else "fail"
        self._studies.tell(
            sweep.id, request, trial.optuna_trial_id, trial.number, optuna_state, value, trial.reported
        )
        self._repo.put_trial(_with(trial, state=state, objective=value))
        self._watched.pop(trial.operation_id, None)
        with self._running_lock:
            self._running.pop(trial.operation_id, None)

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
            owner_id=sweep.owner_id,
        )
        if not self._repo.save(updated, expected=sweep.status):
            logger.info("sweep %s changed meanwhile; not stored as %s", sweep.id, status.value)
            return self.get(sweep.id)
        if status in SWEEP_TERMINAL:
            self._pruning.pop(sweep.id, None)
        return updated


def _request(sweep: Sweep) -> StartSweepRequest:
    return StartSweepRequest.model_validate(sweep.request["sweep"])


def _refusal(exc: Exception) -> str:
    """What refused a trial's training request, in one line (a pydantic error: its first, located)."""
    if isinstance(exc, ValidationError):
        where, message = first_error(exc)
        return f"{where}: {message}"
    return str(exc)


def _with(trial: SweepTrial, **changes: Any) -> SweepTrial:
    return dataclasses.replace(trial, **changes)
