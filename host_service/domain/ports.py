"""Ports the host service's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from host_service.domain.sessions import Session
from shared.contracts.host import StartSession

Clock = Callable[[], datetime]
NewId = Callable[[], str]


class SessionStore(Protocol):
    """Sessions on durable storage, and the folders each session owns."""

    def save(self, session: Session) -> None: ...

    def write_record(self, session_id: str, record: dict[str, Any]) -> None:
        """Replace the session's stored record atomically and durably."""
        ...

    def load_all(self) -> list[Session]: ...

    def data_dir(self, session_id: str) -> Path: ...

    def result_dir(self, session_id: str) -> Path: ...

    def scratch_dir(self, session_id: str) -> Path:
        """Where a command run's output folder is made before its artefacts are kept."""
        ...

    def run_root(self, session_id: str) -> Path:
        """Where the training's run folder is made (its training checkpoints in ``{session_id}/checkpoints``)."""
        ...

    def delete_files(self, session_id: str) -> None:
        """Remove a session's data, scratch, run folder and result (keeps session.json as the record)."""
        ...


class BackendClient(Protocol):
    """The backend as the host sees it: where data comes from and results go."""

    async def download(self, url: str, destination: Path) -> str:
        """Stream ``url`` into ``destination``; return the sha256 of the bytes written."""
        ...

    async def deliver(self, callback_url: str, body: bytes) -> None:
        """POST a signed result body, retrying as the policy says; raise ``CallbackError``."""
        ...

    async def upload(self, url: str, source: BinaryIO, *, size: int, query: dict[str, str]) -> None:
        """PUT ``size`` bytes of ``source``, streamed, signed with ``query`` (which names their sha256);
        one attempt; raise ``CallbackError``."""
        ...


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a training child process needs; plain data so it pickles to a forked child."""

    session_id: str
    request: dict[str, Any]
    data_dir: Path
    result_dir: Path
    heartbeat_interval_s: float
    commands_dir: Path | None = None
    scratch_dir: Path | None = None
    #: Where the run folder goes; set, model workloads write training checkpoints into it.
    run_root: Path | None = None
    checkpoint_every_epochs: int = 1
    checkpoint_min_interval_s: float = 30.0
    #: Resume from the newest checkpoint in :attr:`checkpoint_dir` (put there before training).
    resume: bool = False
    #: The host API process (made in it): a child forked from the fork server has that server as its
    #: parent, so it watches this pid to stop when the host is gone.
    host_pid: int = field(default_factory=os.getpid)

    @property
    def checkpoint_dir(self) -> Path | None:
        """The executor's ``<run folder>/checkpoints`` (the run folder is named after the session)."""
        return None if self.run_root is None else self.run_root / self.session_id / "checkpoints"


class RequestCheck(Protocol):
    """What this host can run, checked when a session is asked for (a command against its own templates)."""

    def check(self, command: StartSession) -> None:
        """Raise a HostServiceError (``command_not_found``, ``invalid_config``) naming what is wrong."""
        ...


@dataclass(frozen=True)
class WorkerMessage:
    """``kind`` is progress, heartbeat, completed, failed or cancelled."""

    kind: str
    body: dict[str, Any] = field(default_factory=dict)


class WorkerHandle(Protocol):
    """One running training child."""

    @property
    def pid(self) -> int | None: ...

    @property
    def exitcode(self) -> int | None: ...

    def is_alive(self) -> bool: ...

    def drain(self) -> list[WorkerMessage]:
        """Messages received since the last call, without blocking."""
        ...

    async def wait(self, timeout: float) -> None:
        """Return once a message may be waiting or the child has exited, at the latest after ``timeout``."""
        ...

    def request_cancel(self) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class WorkerLauncher(Protocol):
    def launch(self, spec: WorkerSpec) -> WorkerHandle: ...

    def prepare_next(self) -> None:
        """Get a worker ready for the next session, if none is ready or being readied (idempotent).
        Called by a session once its training is under way (see ``SessionRunner``)."""
        ...
