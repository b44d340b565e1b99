"""Fakes for host mode: a scripted HostClient, and real tiny result payloads (inline or external)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from backend.errors import HostRejectedError, HostUnavailableError
from shared.contracts.handoff import (
    build_payload,
    describe_model_external,
    encode_model_inline,
    payload_bytes,
)
from shared.contracts.host import (
    DeviceView,
    HostHealth,
    HostLogLine,
    SessionError,
    SessionList,
    SessionStatusName,
    SessionView,
    StartSession,
)
from shared.contracts.training import ProgressUpdate
from shared.trainkit.checkpoint import checkpoint_bytes
from shared.trainkit.models import MLPSpec, build_model

NOW = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class FakeSession:
    session_id: str
    host: str
    command: StartSession
    status: SessionStatusName = SessionStatusName.RUNNING
    progress: ProgressUpdate | None = None
    error: SessionError | None = None
    obeys_stop: bool = True
    acked: bool = False
    recent_epochs: list[dict[str, Any]] = field(default_factory=list)
    recent_logs: list[HostLogLine] = field(default_factory=list)
    resumed_from_epoch: int | None = None

    def view(self) -> SessionView:
        return SessionView(
            session_id=self.session_id,
            operation_id=self.command.operation_id,
            status=self.status,
            progress=self.progress,
            device="cuda" if "gpu" in self.host else "cpu",
            created_at=NOW,
            updated_at=NOW,
            last_heartbeat=NOW,
            error=self.error,
            result_available=self.status is SessionStatusName.COMPLETED and not self.acked,
            result_acknowledged=self.acked,
            recent_epochs=list(self.recent_epochs),
            recent_logs=list(self.recent_logs),
            resumed_from_epoch=self.resumed_from_epoch,
        )


@dataclass
class FakeHostClient:
    """Hosts named by URL; a URL containing ``gpu`` reports a CUDA device. Everything is recorded."""

    capacity: int = 1
    down: set[str] = field(default_factory=set)
    by_id: dict[str, FakeSession] = field(default_factory=dict)
    results: dict[str, bytes] = field(default_factory=dict)
    models: dict[str, Path] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    start_errors: dict[str, Exception] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _check(self, host: str, what: str) -> None:
        self.calls.append((what, host))
        if host in self.down:
            raise HostUnavailableError(f"host {host} did not answer {what}", host=host)

    async def health(self, host: str) -> HostHealth:
        self._check(host, "health")
        busy = sum(1 for s in self.by_id.values() if s.host == host and s.status in _LIVE)
        kind = "cuda" if "gpu" in host else "cpu"
        return HostHealth(
            version="test",
            device=DeviceView(kind=kind, name=kind.upper()),
            capacity=self.capacity,
            sessions_in_use=busy,
            signing_required=True,
        )

    async def start(self, host: str, command: StartSession) -> SessionView:
        self._check(host, "start")
        if host in self.start_errors:
            raise self.start_errors[host]
        session = FakeSession(f"hs_{next(self._ids)}", host, command)
        self.by_id[session.session_id] = session
        return session.view()

    async def status(self, host: str, session_id: str) -> SessionView:
        self._check(host, "status")
        return self._session(host, session_id).view()

    async def stop(self, host: str, session_id: str) -> SessionView:
        self._check(host, "stop")
        session = self._session(host, session_id)
        if session.obeys_stop and session.status in _LIVE:
            session.status = SessionStatusName.CANCELLED
        return session.view()

    async def result(self, host: str, session_id: str, *, max_bytes: int) -> bytes:
        self._check(host, "result")
        if session_id not in self.results:
            raise HostRejectedError(f"no result for {session_id}", host=host, status=409)
        return self.results[session_id]

    async def download_model(self, host: str, url: str, destination: Path, *, max_bytes: int) -> str:
        self._check(host, "download")
        await asyncio.to_thread(shutil.copyfile, self.models[url], destination)
        return hashlib.sha256(destination.read_bytes()).hexdigest()

    async def acknowledge(self, host: str, session_id: str) -> SessionView:
        self._check(host, "ack")
        session = self._session(host, session_id)
        session.acked = True
        return session.view()

    async def sessions(self, host: str) -> SessionList:
        self._check(host, "sessions")
        return SessionList(items=[s.view() for s in self.by_id.values() if s.host == host])

    def _session(self, host: str, session_id: str) -> FakeSession:
        session = self.by_id.get(session_id)
        if session is None or session.host != host:
            raise HostRejectedError(f"no session {session_id} on {host}", host=host, status=404)
        return session

    def session_of(self, op_id: str) -> FakeSession:
        found = [s for s in self.by_id.values() if s.command.operation_id == op_id]
        assert found, f"no session was started for {op_id}"
        return found[-1]

    def count(self, what: str) -> int:
        return sum(1 for call in self.calls if call[0] == what)


_LIVE = frozenset({SessionStatusName.STARTING, SessionStatusName.RUNNING, SessionStatusName.STOPPING})


def tiny_model(hidden: int = 8, inputs: int = 4, outputs: int = 3) -> tuple[bytes, dict[str, Any]]:
    """A real checkpoint of an MLP and the config that rebuilds it (as the executor writes both)."""
    torch.manual_seed(0)
    spec = MLPSpec(input_dim=inputs, output_dim=outputs, hidden_layers=[hidden])
    config = {"model": spec.as_dict(), "training": {"epochs": 1}}
    state = {k: v.detach().clone() for k, v in build_model(spec).state_dict().items()}
    return checkpoint_bytes(state, model_class=spec.model_class, config=config), config


def result_payload(
    op_id: str,
    session_id: str,
    model_file: Path,
    config: dict[str, Any],
    *,
    external_url: str | None = None,
    result: dict[str, Any] | None = None,
) -> bytes:
    """The exact JSON bytes a host sends for a finished session (``result`` replaces the executor's)."""
    model = (
        describe_model_external(model_file, external_url) if external_url else encode_model_inline(model_file)
    )
    return payload_bytes(
        build_payload(
            operation_id=op_id,
            session_id=session_id,
            result=result or {"device": "cuda", "history": [{"epoch": 0, "val_loss": 1.0}], "model": {}},
            artifact={
                "strategy": "trend",
                "name": "EURUSD_1h",
                "config": config,
                "metrics": {"test": {"accuracy": 0.5}},
                "features": {"names": ["a", "b", "c", "d"]},
                "metadata": {"workload": "strategy"},
            },
            model=model,
        )
    )
