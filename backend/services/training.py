"""TrainingService, the orchestrator: validate a request, record an operation, pick a mode, hand it over."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Mapping

from pydantic import ValidationError

from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector
from backend.domain.operations import Operation, OperationStatus
from backend.domain.ports import StrategyCatalog, TrainingEngine, TrainingRunner
from backend.errors import IdempotencyConflictError, InvalidRequestError
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.ray_placement import resources_of
from shared.contracts.errors import first_error
from shared.contracts.operations import StartTrainingRequest
from shared.contracts.training import TrainingRequest, Workload

logger = logging.getLogger(__name__)

# Names that become file names (strategies, symbols): no separators, no dots first.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
# A timeframe is the part after the last '_' of data/{SYMBOL}_{TIMEFRAME}.csv: it cannot hold one.
TIMEFRAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,31}$")
MAX_SERIES = 20


def check_name(value: str, field: str) -> str:
    if not NAME_PATTERN.match(value):
        raise InvalidRequestError(
            f"{field} {value!r} is not valid: use 1-32 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit",
            field=field,
            value=value[:64],
        )
    return value


def check_timeframe(value: str, field: str = "timeframe") -> str:
    if not TIMEFRAME_PATTERN.match(value):
        raise InvalidRequestError(
            f"{field} {value!r} is not valid: use 1-32 letters, digits, '-' or '.' (no '_': data files are "
            "named SYMBOL_TIMEFRAME.csv), e.g. 1h or 1d",
            field=field,
            value=value[:64],
        )
    return value


def _as_list(value: str | list[str] | None, field: str) -> list[str]:
    """The names, each checked, duplicates dropped (first one kept), at most MAX_SERIES of them."""
    values = list(dict.fromkeys([value] if isinstance(value, str) else list(value or [])))
    if len(values) > MAX_SERIES:
        raise InvalidRequestError(
            f"{field}: {len(values)} distinct values given, at most {MAX_SERIES} are allowed; "
            "split the training",
            field=field,
            count=len(values),
            limit=MAX_SERIES,
        )
    check = check_timeframe if field == "timeframe" else check_name
    return [check(v, field) for v in values]


def request_hash(body: StartTrainingRequest) -> str:
    """sha256 of the request as sent, in canonical JSON (keys sorted, idempotency key left out)."""
    canonical = json.dumps(
        body.model_dump(mode="json", exclude={"idempotency_key"}), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class TrainingService:
    def __init__(
        self,
        operations: OperationsService,
        engine: TrainingEngine,
        strategies: StrategyCatalog,
        selector: ExecutionModeSelector,
        runners: Mapping[ExecutionMode, TrainingRunner],
        *,
        logs: LogCapture | None = None,
    ) -> None:
        self._logs = logs
        self._ops = operations
        self._engine = engine
        self._strategies = strategies
        self._selector = selector
        self._runners = runners

    def start_training(
        self, body: StartTrainingRequest, *, submitted_by: str | None = None
    ) -> tuple[Operation, bool]:
        """The operation for ``body`` and whether it was created now (False: idempotent replay).

        A replay must carry the same body as the first request: another body is a 409. ``submitted_by``
        names the API token that sent it (None when tokens are not required)."""
        digest = request_hash(body)
        if body.idempotency_key:
            existing = self._ops.find_by_idempotency_key(body.idempotency_key)
            if existing is not None:
                return _same_request(existing, digest), False
        request = self.resolve(body)
        warnings = self._engine.validate(request)
        requested = ExecutionMode(body.execution_mode.value) if body.execution_mode else None
        decision = self._selector.select(requested, body.require_gpu)
        if body.workload is Workload.PLUGIN:
            _local_only(requested or self._selector.default, decision.mode)
        if decision.mode is ExecutionMode.RAY:
            self._check_ray_resources(request, body.require_gpu)
        op, created = self._ops.create(
            op_type="training",
            request=request.model_dump(mode="json"),
            execution_mode=decision.mode.value,
            mode_reason=decision.reason,
            warnings=[*decision.warnings, *warnings],
            idempotency_key=body.idempotency_key,
            require_gpu=body.require_gpu,
            max_retries=body.max_retries,
            request_hash=digest,
            project=body.project,
            name=body.name,
            tags=body.tags,
            workload=body.workload.value,
            submitted_by=submitted_by,
        )
        if not created:  # another request with the same key won the race
            return _same_request(op, digest), False
        with self._logs.capture(op.id) if self._logs else contextlib.nullcontext():
            logger.info(
                "operation %s accepted%s: execution mode %s (%s)",
                op.id,
                f" from token {submitted_by}" if submitted_by else "",
                decision.mode.value,
                decision.reason,
            )
            for warning in decision.warnings:
                logger.warning("operation %s: %s", op.id, warning)
        self._runner_for(decision.mode).submit(op.id)
        return op, True

    def resolve(self, body: StartTrainingRequest) -> TrainingRequest:
        """The executor's request for ``body``; every problem names the field at fault."""
        if body.start_date and body.end_date and body.start_date > body.end_date:
            raise InvalidRequestError(
                f"start_date {body.start_date} is after end_date {body.end_date}; swap them or drop one",
                field="end_date",
            )
        strategy_name, strategy_yaml = None, None
        if body.workload is Workload.STRATEGY:
            strategy_name, strategy_yaml = self._strategy_of(body)
        try:
            return TrainingRequest(
                workload=body.workload,
                strategy_name=strategy_name,
                strategy_yaml=strategy_yaml,
                symbols=_as_list(body.symbol, "symbol"),
                timeframes=_as_list(body.timeframe, "timeframe"),
                start_date=body.start_date,
                end_date=body.end_date,
                tabular=body.tabular,
                plugin=body.plugin,
                command=body.command,
                name=body.name,
                overrides=body.overrides,
                resources=body.resources,
            )
        except ValidationError as exc:
            where, message = first_error(exc)
            field = where or _field_of_workload(body.workload)
            raise InvalidRequestError(f"{field}: {message}", field=field) from exc

    def _strategy_of(self, body: StartTrainingRequest) -> tuple[str, str]:
        if bool(body.strategy) == bool(body.strategy_yaml):
            raise InvalidRequestError(
                "give exactly one of 'strategy' (the name of a strategy file) or 'strategy_yaml' (its text)",
                field="strategy",
            )
        if not body.symbol or not body.timeframe:
            missing = "symbol" if not body.symbol else "timeframe"
            raise InvalidRequestError(f"{missing} is required for a strategy training", field=missing)
        text = body.strategy_yaml or self._strategies.read_text(check_name(body.strategy or "", "strategy"))
        summary = self._strategies.validate(text)
        return str(summary.get("name") or body.strategy or "inline"), text

    def _check_ray_resources(self, request: TrainingRequest, require_gpu: bool) -> None:
        """Refuse at submit what the cluster can never run (a busy cluster queues the job instead)."""
        refusal = self._selector.ray_refusal(resources_of(request, require_gpu))
        if refusal is not None:
            field = "require_gpu" if "GPU was requested" in refusal else "resources"
            raise InvalidRequestError(
                f"{field}: {refusal}; ask for less (resources.cpus, resources.memory_mb) or grow the cluster",
                field=field,
            )

    def cancel(self, op_id: str, *, by: str | None = None) -> Operation:
        """Pending → cancelled; running → cancelling and the runner's token set; finished → 409.
        ``by`` names the API token that asked."""
        op = self._ops.request_cancel(op_id, by=by)
        if by is not None and op.cancelled_by == by:
            with self._logs.capture(op.id) if self._logs else contextlib.nullcontext():
                logger.info("operation %s cancelled by token %s", op.id, by)
        if op.status is OperationStatus.CANCELLING:
            runner = self._runners.get(ExecutionMode(op.execution_mode))
            if runner is None or not runner.cancel(op_id):
                logger.warning("operation %s is cancelling but no runner here is running it", op_id)
        return op

    def retry(self, op_id: str, *, from_checkpoint: bool = True, by: str | None = None) -> Operation:
        """Queue a failed, cancelled or interrupted operation again as a new attempt (409 otherwise)."""
        op = self._ops.retry(op_id, from_checkpoint=from_checkpoint)
        with self._logs.capture(op.id) if self._logs else contextlib.nullcontext():
            start = "from its last checkpoint" if from_checkpoint else "from scratch"
            who = f" by token {by}" if by else ""
            logger.info(
                "operation %s: retry requested%s, attempt %d %s", op.id, who, len(op.attempt_log), start
            )
        self._runner_for(ExecutionMode(op.execution_mode)).submit(op.id)
        return op

    def resume_after_restart(self) -> list[str]:
        """Re-queue this backend's pending operations, oldest first (another live backend queues its
        own; dead backends' ones were adopted by the InstanceLease's first sweep)."""
        pending = []
        for op_id in self._ops.pending_ids():
            op = self._ops.get(op_id)
            if self._ops.owned_elsewhere(op):
                continue
            self._runner_for(ExecutionMode(op.execution_mode)).submit(op_id)
            pending.append(op_id)
        if pending:
            logger.info("re-queued %d pending operation(s)", len(pending))
        return pending

    def requeue(self, op_id: str) -> None:
        """Queue a pending operation adopted from a backend that died, on the runner of its mode."""
        op = self._ops.get(op_id)
        if op.status is OperationStatus.PENDING:
            self._runner_for(ExecutionMode(op.execution_mode)).submit(op_id)
            logger.info("operation %s of a stopped backend re-queued here", op_id)

    def _runner_for(self, mode: ExecutionMode) -> TrainingRunner:
        runner = self._runners.get(mode) or self._runners.get(ExecutionMode.LOCAL)
        if runner is None:
            raise RuntimeError(f"no runner for execution mode {mode.value}")
        return runner


def _field_of_workload(workload: Workload) -> str:
    return str(workload.value)


def _same_request(existing: Operation, digest: str) -> Operation:
    """``existing`` if it was created by the same request; IdempotencyConflictError if not."""
    if existing.request_hash is not None and existing.request_hash != digest:
        raise IdempotencyConflictError(
            f"idempotency_key {existing.idempotency_key!r} was already used by operation {existing.id} "
            "with a different request; use a new key for a different training, or resend the same body",
            operation_id=existing.id,
            idempotency_key=existing.idempotency_key,
        )
    return existing


def _local_only(requested: ExecutionMode, chosen: ExecutionMode) -> None:
    """Plugins never go to a host, whatever the hosts' health: the answer must not depend on it."""
    if {ExecutionMode.HOST, ExecutionMode.RAY} & {requested, chosen}:
        raise InvalidRequestError(
            "plugin trainings run only in local mode: plugins are allowlisted per machine "
            "(MODELYARD_PLUGIN_ALLOWLIST) and a host service does not share this backend's allowlist; "
            "start it with execution_mode 'local'",
            field="execution_mode",
            execution_mode=requested.value,
        )
