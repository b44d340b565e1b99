"""Hand-written fakes of the host service's ports."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from host_service.domain.ports import WorkerMessage, WorkerSpec
from host_service.domain.sessions import Session, SessionStatus
from host_service.errors import CallbackRejectedError, DatasetError
from shared.contracts.signing import sign_request


class FixedClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def new_session(session_id: str = "hs_1", status: SessionStatus = SessionStatus.STARTING) -> Session:
    """A session as ``SessionService.start`` makes one (times fixed)."""
    at = datetime(2025, 1, 5, tzinfo=UTC)
    return Session(
        session_id=session_id,
        operation_id=f"op_{session_id.removeprefix('hs_')}",
        fingerprint="f",
        callback_url="http://b/cb",
        request={},
        datasets=[],
        created_at=at,
        updated_at=at,
        status=status,
    )


class FakeWorker:
    """A child that does what the test says: finish, crash, obey or ignore cancel/terminate."""

    def __init__(self, spec: WorkerSpec, *, obeys_cancel: bool = True, obeys_terminate: bool = True) -> None:
        self.spec = spec
        self.obeys_cancel = obeys_cancel
        self.obeys_terminate = obeys_terminate
        self.pending: list[WorkerMessage] = []
        self.calls: list[str] = []
        self.alive = True
        self._exitcode: int | None = None

    @property
    def pid(self) -> int | None:
        return 4242

    @property
    def exitcode(self) -> int | None:
        return self._exitcode

    def is_alive(self) -> bool:
        return self.alive

    def drain(self) -> list[WorkerMessage]:
        out, self.pending = self.pending, []
        return out

    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(timeout)

    def send(self, kind: str, **body: object) -> None:
        self.pending.append(WorkerMessage(kind, dict(body)))

    def exit(self, code: int) -> None:
        self.alive, self._exitcode = False, code

    def complete(self, result_files: Callable[[Path], None] | None = None) -> None:
        if result_files is not None:
            result_files(self.spec.result_dir)
        self.send("completed", device="cpu")
        self.exit(0)

    def request_cancel(self) -> None:
        self.calls.append("cancel")
        if self.obeys_cancel:
            self.send("cancelled", message="training cancelled (epoch 1)")
            self.exit(0)

    def terminate(self) -> None:
        self.calls.append("terminate")
        if self.obeys_terminate:
            self.exit(-15)

    def kill(self) -> None:
        self.calls.append("kill")
        self.exit(-9)


class FakeLauncher:
    def __init__(self, **worker_options: bool) -> None:
        self.workers: list[FakeWorker] = []
        self.worker_options = worker_options
        #: How many workers were launched when each ``prepare_next`` came.
        self.prepared: list[int] = []

    def launch(self, spec: WorkerSpec) -> FakeWorker:
        worker = FakeWorker(spec, **self.worker_options)
        self.workers.append(worker)
        return worker

    def prepare_next(self) -> None:
        self.prepared.append(len(self.workers))


class FakeBackendClient:
    """Serves ``files`` by URL; records delivered bodies; ``reject`` makes deliveries fail."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = files or {}
        self.downloads: list[str] = []
        self.delivered: list[tuple[str, bytes]] = []
        self.reject = False

    async def download(self, url: str, destination: Path) -> str:
        self.downloads.append(url)
        if url not in self.files:
            raise DatasetError(f"downloading {url} failed with HTTP 404", url=url)
        destination.write_bytes(self.files[url])
        return hashlib.sha256(self.files[url]).hexdigest()

    async def deliver(self, callback_url: str, body: bytes) -> None:
        if self.reject:
            raise CallbackRejectedError("rejected with HTTP 400")
        self.delivered.append((callback_url, body))


class SigningAuth(httpx.Auth):
    """Signs every request the way the backend must (tests act as the backend)."""

    requires_request_body = True

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("ascii")
        request.headers.update(sign_request(self.secret, request.method, target, request.content))
        yield request
