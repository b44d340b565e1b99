"""RemoteFollower: follows one remote run (a host session, a Ray job) until its operation ends.

One loop for every remote mode. It polls the run through the RemoteBackend (``poll_initial_s``, backing
off to ``poll_max_s`` while nothing changes; a run just started is first looked at after one
``poll_initial_s``), mirrors progress, epochs, device and heartbeat into the operation through the same
throttle as local progress, relays the run's log lines into the operation's log, pulls the result when
the run completed but no callback arrived within ``result_pull_delay_s``, forwards a cancel and records
``cancelled`` after ``cancel_grace_s``. A run lost for reasons of the infrastructure (silent past the
lease, gone, crashed) is returned to the RemoteRunner, whose re-dispatch policy decides what becomes of
its operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.domain.attempts import reported_since_placed
from backend.domain.hosts import HostLease, next_poll_interval
from backend.domain.operations import Operation, OperationError, OperationStatus
from backend.domain.ports import RemoteBackend
from backend.domain.remote_runs import RemoteRun, RemoteState, RemoteStatus, RemoteTimings
from backend.errors import (
    BackendError,
    HostError,
    IllegalTransitionError,
    PayloadTooLargeError,
    RayError,
    ResultBeingStoredError,
    ResultConflictError,
    ResultRejectedError,
)
from backend.services.operations import OperationsService
from backend.services.progress import merge_progress, note_remote_resume, with_new_epochs
from backend.services.result_ingest import parse_payload
from shared.contracts.host import ResultPayload

logger = logging.getLogger(__name__)

#: Stores a pulled result (``ResultIngest.ingest``): the same path as the run's callback.
Ingest = Callable[[ResultPayload], Awaitable[object]]

#: A failed run's end is re-checked at least this often while its settle grace runs.
_SETTLE_POLL_S = 0.2


@dataclass(frozen=True)
class Settled:
    """Following ends; ``lost`` set: the run was lost and the runner's re-dispatch policy decides."""

    lost: OperationError | None = None


class RemoteFollower:
    def __init__(
        self,
        op_id: str,
        run: RemoteRun,
        *,
        operations: OperationsService,
        backend: RemoteBackend,
        ingest: Ingest,
        timings: RemoteTimings,
        wake: asyncio.Event,
        monotonic: Callable[[], float] = time.monotonic,
        first_look_after_s: float = 0.0,
    ) -> None:
        self.op_id = op_id
        self.run = run
        self._ops = operations
        self._backend = backend
        self._ingest = ingest
        self._t = timings
        self.wake = wake
        self._monotonic = monotonic
        self._first_look_after_s = first_look_after_s
        self._last_progress: dict[str, Any] | None = None
        self._completed_at: float | None = None
        self._ended_at: float | None = None
        self._cancel_sent_at: float | None = None
        self._log_cursor = 0

    async def follow(self) -> OperationError | None:
        """Follow until the operation settles (None) or the run is lost (its error)."""
        lease = HostLease(self._t.lease_s, self._monotonic())
        interval = self._t.poll_initial_s
        if self._first_look_after_s > 0:  # a cancel, or the result stored meanwhile, wakes it sooner
            await self._sleep(self._first_look_after_s)
        while True:
            op = await asyncio.to_thread(self._ops.get, self.op_id)
            if op.is_terminal:
                await self._finish(op)
                return None
            if op.host_session_id != self.run.run_id or self._ops.owned_elsewhere(op):
                return None  # re-dispatched, or adopted by another backend: another follower owns it now
            if await self._cancel_step(op):
                return None
            status = await self._backend.status(self.run, self._log_cursor)
            if status.state is RemoteState.SILENT:
                silent = lease.silent_for(self._monotonic())
                if lease.expired(self._monotonic()):
                    return self._backend.silence_error(self.run, silent, status.reason, self._t.lease_s)
                logger.warning(
                    "%s silent for %.1f s: %s", self._backend.describe(self.run), silent, status.reason
                )
                await self._sleep(min(self._t.poll_initial_s, max(self._t.lease_s - silent, 0.05)))
                continue
            lease.renew(self._monotonic())
            changed = await asyncio.to_thread(self._mirror, status)
            settled = await self._settle(op, status)
            if settled is not None:
                return settled.lost
            if status.state is RemoteState.COMPLETED:
                interval = self._t.poll_initial_s
            elif status.state is RemoteState.FAILED:
                interval = min(self._t.poll_initial_s, _SETTLE_POLL_S)
            else:
                interval = next_poll_interval(
                    interval, initial=self._t.poll_initial_s, maximum=self._t.poll_max_s, changed=changed
                )
            await self._sleep(interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()

    def _mirror(self, status: RemoteStatus) -> bool:
        """Progress, every epoch's metrics, device and heartbeat into the live operation, and the run's
        new log lines into its log; True when the progress changed."""
        progress = status.progress.model_dump(mode="json") if status.progress else None
        changed = progress is not None and progress != self._last_progress
        self._last_progress = progress
        self._relay_logs(status)
        resumed = status.resumed_from_epoch
        if not (changed or status.epochs or status.device or status.heartbeat or resumed is not None):
            return changed  # nothing to write (a Ray job posts its progress itself)
        now = self._ops.now()

        def change(op: Operation) -> Operation:
            op = note_remote_resume(op, resumed)  # once per attempt, before its epochs join the history
            updated = merge_progress(op, status.progress, now) if changed and status.progress else op
            if status.epochs:  # the run's list of epochs, not the one the last poll happened to see
                updated = updated.with_changes(history=with_new_epochs(op.history, list(status.epochs)))
            return updated.with_changes(
                device=status.device or updated.device,
                heartbeat_at=status.heartbeat or updated.heartbeat_at,
            )

        self._ops.report_live(self.op_id, change)
        return changed

    def _relay_logs(self, status: RemoteStatus) -> None:
        """The run's new log lines into the operation's log (the follower runs inside its log capture)."""
        for line in status.logs:
            logger.log(line.level, "%s", line.message)
        self._log_cursor = status.log_cursor

    async def _settle(self, op: Operation, status: RemoteStatus) -> Settled | None:
        """Act on a finished run; a Settled when following ends."""
        if status.state is RemoteState.RUNNING:
            return None
        if status.state is RemoteState.COMPLETED:
            await self._collect(op)
            return None
        where = self._backend.describe(self.run)
        if status.state is RemoteState.CANCELLED or (status.lost and op.status is OperationStatus.CANCELLING):
            logger.info("%s ended (%s) while cancelling", where, status.state.value)
            await self._mark_cancelled()
            return Settled()
        now = self._monotonic()
        self._ended_at = self._ended_at if self._ended_at is not None else now
        if now - self._ended_at < status.settle_after_s:
            return None  # the result (or the run's own failure) is still being recorded
        error = status.error or OperationError(
            self._backend.lost_code, f"{where} failed", self._backend.details(self.run)
        )
        if status.lost:
            if status.start_failure is not None and not reported_since_placed(op):
                logger.error("%s: %s", where, status.start_failure.message)
                with contextlib.suppress(IllegalTransitionError):
                    await asyncio.to_thread(self._ops.fail, self.op_id, status.start_failure)
                return Settled()
            return Settled(error)
        with contextlib.suppress(IllegalTransitionError):
            await asyncio.to_thread(self._ops.fail, self.op_id, error)
        return Settled()

    async def _collect(self, op: Operation) -> None:
        """The run completed: wait for its result callback; pull it when none came in time."""
        now = self._monotonic()
        if self._completed_at is None:
            self._completed_at = now
            logger.info("%s completed; waiting for its result callback", self._backend.describe(self.run))
        elif now - self._completed_at >= self._t.result_pull_delay_s:
            self._completed_at = now  # the next pull, if this one fails, after another delay
            await self._pull()

    async def _pull(self) -> None:
        where = self._backend.describe(self.run)
        logger.info("no callback from %s yet; pulling its result", where)
        try:
            body = await self._backend.fetch_result(self.run, max_bytes=self._t.callback_max_bytes)
            if body is None:
                return
            payload = parse_payload(body)
            if payload.operation_id != self.op_id or payload.session_id != self.run.run_id:
                raise ResultRejectedError(
                    f"{where} answered with the result of {payload.operation_id}/{payload.session_id}, "
                    f"not {self.op_id}/{self.run.run_id}"
                )
            await self._ingest(payload)
        except (ResultRejectedError, PayloadTooLargeError) as exc:
            details = {**exc.details, **self._backend.details(self.run)}
            await asyncio.to_thread(
                self._ops.fail, self.op_id, OperationError("result_rejected", exc.message, details)
            )
        except (HostError, RayError, ResultConflictError, ResultBeingStoredError) as exc:
            logger.warning("pulling the result of %s failed: %s", where, exc.message)

    async def _cancel_step(self, op: Operation) -> bool:
        """Forward a cancel once; after the grace period, record it as done. True when settled."""
        if op.status is not OperationStatus.CANCELLING:
            return False
        now = self._monotonic()
        if self._cancel_sent_at is None:
            self._cancel_sent_at = now
            await self._send_stop()
            return False
        if now - self._cancel_sent_at <= self._t.cancel_grace_s:
            return False
        logger.warning(
            "%s did not confirm the cancel within %.0f s (MODELYARD_CANCEL_GRACE_S); recording it as cancelled",
            self._backend.describe(self.run),
            self._t.cancel_grace_s,
        )
        await self._send_stop()
        await self._mark_cancelled()
        return True

    async def _send_stop(self) -> None:
        where = self._backend.describe(self.run)
        try:
            await self._backend.stop(self.run)
            logger.info("asked %s to stop", where)
        except BackendError as exc:
            logger.warning("stop of %s failed: %s", where, exc.message)

    async def _mark_cancelled(self) -> None:
        with contextlib.suppress(IllegalTransitionError):
            await asyncio.to_thread(self._ops.mark_cancelled, self.op_id)

    async def _finish(self, op: Operation) -> None:
        """The operation settled: relay the lines logged after the last poll (the end of training, often);
        tell the remote side its result is stored."""
        if op.host_session_id != self.run.run_id:
            return
        status = await self._backend.status(self.run, self._log_cursor)
        if status.state is RemoteState.SILENT:
            logger.info(
                "the last log lines of %s were not fetched: %s",
                self._backend.describe(self.run),
                status.reason,
            )
        else:
            self._relay_logs(status)
        if op.status is OperationStatus.COMPLETED:
            await self._backend.acknowledge(self.run)
