"""Ports the host service's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from host_service.domain.sessions import Session
from shared.contracts.host import StartSession

Clock = Callable[[], datetime]
NewId = Callable[[], str]


class SessionStore(Protocol):
    """Sessions on durable storage, and the folders each session owns."""

    def save(self, session: Session) -> None: ...

    def load_all(self) -> list[Session]: ...

    def data_dir(self, session_id: str) -> Path: ...

    def result_dir(self, session_id: str) -> Path: ...

    def scratch_dir(self, session_id: str) -> Path:
        """Where a command run's output folder is made before its artefacts are kept."""
        ...

    def delete_files(self, session_id: str) -> None:
        """Remove a session's data, scratch and result (keeps session.json as the record)."""
        ...


class BackendClient(Protocol):
    """The backend as the host sees it: where data comes from and results go."""

    async def download(self, url: str, destination: Path) -> str:
        """Stream ``url`` into ``destination``; return the sha256 of the bytes written."""
        ...

    async def deliver(self, callback_url: str, body: bytes) -> None:
        """POST a signed result body, retrying as the policy says; raise ``CallbackError``."""
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
    #: The host API process (made in it): a child forked from the fork server has that server as its
    #: parent, so it watches this pid to stop when the host is gone.
    host_pid: int = field(default_factory=os.getpid)


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

    def request_cancel(self) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class WorkerLauncher(Protocol):
    def launch(self, spec: WorkerSpec) -> WorkerHandle: ...
