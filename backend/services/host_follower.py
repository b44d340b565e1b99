"""SessionFollower: follows one host session until its operation ends, and is its watchdog.

It polls the session's status (``poll_initial_s``, backing off to ``poll_max_s`` while nothing changes),
mirrors progress, device and heartbeat into the operation through the same throttle as local progress,
pulls the result when the host says completed but no callback arrived within ``result_pull_delay_s``,
forwards a cancel and forces ``cancelled`` after ``cancel_grace_s``, and hands the operation to
``on_lost`` when the host has not answered for longer than the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from backend.domain.hosts import HostLease, next_poll_interval
from backend.domain.operations import Operation, OperationError, OperationStatus
from backend.domain.ports import HostClient
from backend.errors import (
    BackendError,
    HostError,
    HostRejectedError,
    HostUnavailableError,
    IllegalTransitionError,
    PayloadTooLargeError,
    ResultBeingStoredError,
    ResultConflictError,
    ResultRejectedError,
)
from backend.services.host_dispatch import HostTimings
from backend.services.operations import OperationsService
from backend.services.progress import merge_progress, note_remote_resume, with_new_epochs
from backend.services.result_ingest import ResultIngest, parse_payload
from shared.contracts.host import SessionStatusName, SessionView

logger = logging.getLogger(__name__)

# Host failures that say nothing about the training itself: worth another host (MODELYARD_MAX_RETRIES).
INFRASTRUCTURE_CODES = frozenset({"worker_crashed", "host_restarted", "dataset_unavailable"})

OnLost = Callable[[Operation, str, OperationError], Awaitable[None]]


class SessionFollower:
    def __init__(
        self,
        op_id: str,
        host_url: str,
        session_id: str,
        *,
        operations: OperationsService,
        client: HostClient,
        ingest: ResultIngest,
        timings: HostTimings,
        on_lost: OnLost,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.op_id = op_id
        self.host_url = host_url
        self.session_id = session_id
        self._ops = operations
        self._client = client
        self._ingest = ingest
        self._t = timings
        self._on_lost = on_lost
        self._monotonic = monotonic
        self.wake = asyncio.Event()
        self._last_progress: dict[str, Any] | None = None
        self._completed_at: float | None = None
        self._cancel_sent_at: float | None = None
        self._log_seq = 0

    async def run(self) -> None:
        lease = HostLease(self._t.lease_s, self._monotonic())
        interval = self._t.poll_initial_s
        while True:
            op = await asyncio.to_thread(self._ops.get, self.op_id)
            if op.is_terminal:
                await self._finish(op)
                return
            if op.host_session_id != self.session_id or self._ops.owned_elsewhere(op):
                return  # re-dispatched, or adopted by another backend: another follower owns it now
            if await self._cancel_step(op):
                return
            try:
                view = await self._client.status(self.host_url, self.session_id)
            except HostUnavailableError as exc:
                silent = lease.silent_for(self._monotonic())
                if lease.expired(self._monotonic()):
                    await self._on_lost(op, self.host_url, self._lost_error(silent, exc.message))
                    return
                logger.warning("host %s silent for %.1f s: %s", self.host_url, silent, exc.message)
                interval = min(self._t.poll_initial_s, max(self._t.lease_s - silent, 0.05))
                await self._sleep(interval)
                continue
            except HostRejectedError as exc:
                error = OperationError("host_session_lost", exc.message, self._where())
                await self._on_lost(op, self.host_url, error)
                return
            lease.renew(self._monotonic())
            changed = await asyncio.to_thread(self._mirror, view)
            if await self._settle(op, view):
                return
            if view.status is SessionStatusName.COMPLETED:
                interval = self._t.poll_initial_s
            else:
                interval = next_poll_interval(
                    interval, initial=self._t.poll_initial_s, maximum=self._t.poll_max_s, changed=changed
                )
            await self._sleep(interval)

    def _where(self) -> dict[str, Any]:
        return {"host": self.host_url, "session_id": self.session_id}

    def _lost_error(self, silent: float, reason: str) -> OperationError:
        message = (
            f"host {self.host_url} did not answer for {silent:.1f} s, longer than the lease of "
            f"{self._t.lease_s:.0f} s (MODELYARD_HOST_LEASE_S); the training there is lost ({reason})"
        )
        return OperationError("host_lost", message, {**self._where(), "silent_s": round(silent, 1)})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()

    def _mirror(self, view: SessionView) -> bool:
        """Progress, every epoch's metrics, device and heartbeat into the live operation, and the host's
        new log lines into its log; True when the progress changed."""
        progress = view.progress.model_dump(mode="json") if view.progress else None
        changed = progress is not None and progress != self._last_progress
        self._last_progress = progress
        self._relay_logs(view)
        now = self._ops.now()

        def change(op: Operation) -> Operation:
            op = note_remote_resume(op, view.resumed_from_epoch)
            updated = merge_progress(op, view.progress, now) if changed and view.progress else op
            if view.recent_epochs:  # the host's list of epochs, not the one the last poll happened to see
                updated = updated.with_changes(history=with_new_epochs(op.history, view.recent_epochs))
            return updated.with_changes(
                device=view.device or updated.device,
                heartbeat_at=view.last_heartbeat or updated.heartbeat_at,
            )

        self._ops.report_live(self.op_id, change)
        return changed

    def _relay_logs(self, view: SessionView) -> None:
        """The host's log lines not relayed yet, into the operation's log (the follower runs inside
        its log capture), with their level; lines the host no longer keeps are counted."""
        fresh = [line for line in view.recent_logs if line.seq > self._log_seq]
        if not fresh:
            return
        if fresh[0].seq > self._log_seq + 1:
            skipped = fresh[0].seq - self._log_seq - 1
            logger.warning("[host] %d log line(s) of the host were not kept between two polls", skipped)
        for line in fresh:
            level = logging.getLevelName(line.level)
            logger.log(level if isinstance(level, int) else logging.INFO, "[host] %s", line.message)
        self._log_seq = fresh[-1].seq

    async def _settle(self, op: Operation, view: SessionView) -> bool:
        """Act on a finished session; True when the operation is settled and following ends."""
        if view.status is SessionStatusName.COMPLETED:
            now = self._monotonic()
            if self._completed_at is None:
                self._completed_at = now
                logger.info("host session %s completed; waiting for its result callback", self.session_id)
            elif now - self._completed_at >= self._t.result_pull_delay_s:
                self._completed_at = now  # the next pull, if this one fails, after another delay
                await self._pull(op)
            return False
        if view.status is SessionStatusName.FAILED:
            error = view.error
            code = error.code if error else "host_failed"
            failure = OperationError(
                code,
                f"the training failed on host {self.host_url}: {error.message if error else 'no reason given'}",
                {**(error.details if error else {}), **self._where()},
            )
            if code in INFRASTRUCTURE_CODES:
                await self._on_lost(op, self.host_url, failure)
            else:
                await asyncio.to_thread(self._ops.fail, self.op_id, failure)
            return True
        if view.status is SessionStatusName.CANCELLED:
            logger.info("host session %s cancelled", self.session_id)
            with contextlib.suppress(IllegalTransitionError):
                await asyncio.to_thread(self._ops.mark_cancelled, self.op_id)
            return True
        return False

    async def _pull(self, op: Operation) -> None:
        logger.info(
            "no callback for session %s yet; pulling its result from %s", self.session_id, self.host_url
        )
        try:
            body = await self._client.result(
                self.host_url, self.session_id, max_bytes=self._t.callback_max_bytes
            )
            payload = parse_payload(body)
            if payload.operation_id != self.op_id or payload.session_id != self.session_id:
                raise ResultRejectedError(
                    f"host {self.host_url} answered with the result of {payload.operation_id}/"
                    f"{payload.session_id}, not {self.op_id}/{self.session_id}"
                )
            await self._ingest.ingest(payload)
        except (ResultRejectedError, PayloadTooLargeError) as exc:
            error = OperationError("result_rejected", exc.message, {**exc.details, **self._where()})
            await asyncio.to_thread(self._ops.fail, self.op_id, error)
        except (HostError, ResultConflictError, ResultBeingStoredError) as exc:
            logger.warning("pulling the result of session %s failed: %s", self.session_id, exc.message)

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
            "host %s did not confirm the cancel of session %s within %.0f s (MODELYARD_CANCEL_GRACE_S); "
            "recording it as cancelled",
            self.host_url,
            self.session_id,
            self._t.cancel_grace_s,
        )
        await self._send_stop()
        with contextlib.suppress(IllegalTransitionError):
            await asyncio.to_thread(self._ops.mark_cancelled, self.op_id)
        return True

    async def _send_stop(self) -> None:
        try:
            await self._client.stop(self.host_url, self.session_id)
            logger.info("asked host %s to stop session %s", self.host_url, self.session_id)
        except BackendError as exc:
            logger.warning("stop of session %s on %s failed: %s", self.session_id, self.host_url, exc.message)

    async def _finish(self, op: Operation) -> None:
        if op.host_session_id == self.session_id:
            await self._last_logs()
        if op.status is OperationStatus.COMPLETED and op.host_session_id == self.session_id:
            await self._ingest.acknowledge(self.host_url, self.session_id)

    async def _last_logs(self) -> None:
        """The lines the host logged after the last poll (the end of training, often), once settled."""
        try:
            view = await self._client.status(self.host_url, self.session_id)
        except HostError as exc:
            logger.info("the last log lines of session %s were not fetched: %s", self.session_id, exc.message)
            return
        self._relay_logs(view)
