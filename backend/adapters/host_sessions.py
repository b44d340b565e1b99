"""HostSessions: the RemoteBackend of host mode, one host session per run, over the HostClient port."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from backend.domain.operations import OperationError
from backend.domain.ports import HostClient
from backend.domain.ray_cluster import JobResources
from backend.domain.remote_runs import RemoteLogLine, RemoteRun, RemoteState, RemoteStatus
from backend.errors import HostRejectedError, HostUnavailableError
from shared.contracts.host import SessionStatusName, SessionView, StartSession

logger = logging.getLogger(__name__)

# Host failures that say nothing about the training itself: worth another host (MODELYARD_MAX_RETRIES).
INFRASTRUCTURE_CODES = frozenset({"worker_crashed", "host_restarted", "dataset_unavailable"})

_STATES = {
    SessionStatusName.COMPLETED: RemoteState.COMPLETED,
    SessionStatusName.FAILED: RemoteState.FAILED,
    SessionStatusName.CANCELLED: RemoteState.CANCELLED,
}


class HostSessions:
    mode = "host"
    lost_code = "host_lost"

    def __init__(self, client: HostClient, acknowledge: Callable[[str, str], Awaitable[bool]]) -> None:
        self._client = client
        self._acknowledge = acknowledge

    async def start(self, where: str, command: StartSession, resources: JobResources) -> RemoteRun:
        view = await self._client.start(where, command)
        return RemoteRun(where, view.session_id)

    async def status(self, run: RemoteRun, log_cursor: int) -> RemoteStatus:
        try:
            view = await self._client.status(run.where, run.run_id)
        except HostUnavailableError as exc:
            return RemoteStatus(RemoteState.SILENT, log_cursor, reason=exc.message)
        except HostRejectedError as exc:
            gone = OperationError("host_session_lost", exc.message, self.details(run))
            return RemoteStatus(RemoteState.FAILED, log_cursor, error=gone, lost=True)
        cursor, logs = _fresh_logs(view, log_cursor)
        state = _STATES.get(view.status, RemoteState.RUNNING)
        error = self._failure(run, view) if state is RemoteState.FAILED else None
        return RemoteStatus(
            state,
            cursor,
            logs,
            progress=view.progress,
            epochs=tuple(view.recent_epochs),
            device=view.device,
            heartbeat=view.last_heartbeat,
            error=error,
            lost=error is not None and error.code in INFRASTRUCTURE_CODES,
            resumed_from_epoch=view.resumed_from_epoch,
        )

    def _failure(self, run: RemoteRun, view: SessionView) -> OperationError:
        error = view.error
        return OperationError(
            error.code if error else "host_failed",
            f"the training failed on host {run.where}: {error.message if error else 'no reason given'}",
            {**(error.details if error else {}), **self.details(run)},
        )

    async def stop(self, run: RemoteRun) -> None:
        await self._client.stop(run.where, run.run_id)

    async def fetch_result(self, run: RemoteRun, *, max_bytes: int) -> bytes | None:
        return await self._client.result(run.where, run.run_id, max_bytes=max_bytes)

    async def acknowledge(self, run: RemoteRun) -> None:
        await self._acknowledge(run.where, run.run_id)

    def describe(self, run: RemoteRun) -> str:
        return f"session {run.run_id} on host {run.where}"

    def details(self, run: RemoteRun) -> dict[str, Any]:
        return {"host": run.where, "session_id": run.run_id}

    def silence_error(self, run: RemoteRun, silent_s: float, reason: str, lease_s: float) -> OperationError:
        message = (
            f"host {run.where} did not answer for {silent_s:.1f} s, longer than the lease of "
            f"{lease_s:.0f} s (MODELYARD_HOST_LEASE_S); the training there is lost ({reason})"
        )
        return OperationError("host_lost", message, {**self.details(run), "silent_s": round(silent_s, 1)})


def _fresh_logs(view: SessionView, cursor: int) -> tuple[int, tuple[RemoteLogLine, ...]]:
    """The host's log lines after ``cursor`` (its sequence number), with their level; lines the host no
    longer keeps are counted."""
    fresh = [line for line in view.recent_logs if line.seq > cursor]
    if not fresh:
        return cursor, ()
    lines = []
    if fresh[0].seq > cursor + 1:
        skipped = fresh[0].seq - cursor - 1
        lines.append(
            RemoteLogLine(
                logging.WARNING, f"[host] {skipped} log line(s) of the host were not kept between two polls"
            )
        )
    for line in fresh:
        level = logging.getLevelName(line.level)
        lines.append(
            RemoteLogLine(level if isinstance(level, int) else logging.INFO, f"[host] {line.message}")
        )
    return fresh[-1].seq, tuple(lines)
