"""Ports: what the services need from the outside world. Adapters implement them; tests fake them."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from backend.domain.aliases import AliasChange, ModelAlias
from backend.domain.checkpoints import StoredCheckpoint
from backend.domain.instances import BackendInstance
from backend.domain.operations import (
    Operation,
    OperationError,
    OperationFilter,
    OperationStatus,
    OperationSummary,
    ProjectSummary,
)
from backend.domain.ray_cluster import JobResources, RayClusterState, RayJob
from backend.domain.remote_runs import RemoteRun, RemoteStatus
from backend.domain.results import ResultClaim, StoredVersion
from backend.domain.tokens import ApiToken
from shared.contracts.commands import CommandView
from shared.contracts.host import HostHealth, SessionList, SessionView, StartSession
from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor.types import ModelArtifact, ModelRef, ProgressCallback, TrainingResult


class Clock(Protocol):
    def now(self) -> datetime: ...


class OperationRepository(Protocol):
    def add(self, op: Operation) -> Operation:
        """Insert; if ``op.idempotency_key`` is taken, return the operation that holds it instead."""
        ...

    def get(self, op_id: str) -> Operation | None: ...

    def get_by_idempotency_key(self, key: str) -> Operation | None: ...

    def save(self, op: Operation, *, expected: OperationStatus) -> bool:
        """Write ``op`` only if the stored status is still ``expected`` and the stored owner is still
        ``op.owner_id`` (compare-and-set); never changes the owner."""
        ...

    def claim(self, op: Operation) -> bool:
        """Write ``op`` (running, with its new owner) only if the stored one is still pending, the row
        locked so that of N backends claiming it exactly one wins."""
        ...

    def adopt(self, op_id: str, *, previous_owner: str | None, new_owner: str) -> bool:
        """Give an unfinished operation to ``new_owner`` if ``previous_owner`` still has it."""
        ...

    def find(self, where: OperationFilter, *, limit: int, offset: int) -> tuple[list[Operation], int]:
        """A page of the operations ``where`` selects, newest first, and how many it selects in all."""
        ...

    def summaries(self, op_ids: Collection[str], *, histories: Collection[str]) -> list[OperationSummary]:
        """Those of ``op_ids`` that exist, in one statement (per thousand ids), with the history only
        of those in ``histories`` (any order)."""
        ...

    def pending_ids(self) -> list[str]:
        """Pending operations, oldest first (the FIFO order they run in)."""
        ...

    def count_by_status(self) -> dict[OperationStatus, int]: ...

    def project_summaries(self) -> list[ProjectSummary]:
        """Every project that has an operation, the most recently active first."""
        ...

    def ping(self) -> None: ...


class TokenRepository(Protocol):
    def add(self, token: ApiToken) -> None:
        """Insert; TokenExistsError when the name is taken (by a revoked token too)."""
        ...

    def get(self, name: str) -> ApiToken | None: ...

    def all(self) -> list[ApiToken]:
        """Every token, revoked and expired ones too, oldest first."""
        ...

    def revoke(self, name: str, at: datetime) -> ApiToken | None:
        """Mark it revoked (a second revoke keeps the first time); None when there is no such token."""
        ...

    def record_use(self, used: Mapping[str, datetime]) -> None:
        """Set ``last_used_at`` of each named token (never moving it back)."""
        ...


class InstanceRepository(Protocol):
    """The leases of the backend processes sharing one database."""

    def register(self, instance: BackendInstance) -> None: ...

    def heartbeat(self, instance_id: str, at: datetime) -> bool:
        """Renew a lease; False when its row is gone."""
        ...

    def remove(self, instance_id: str) -> None: ...

    def all(self) -> list[BackendInstance]: ...


class TrainingEngine(Protocol):
    """The shared TrainingExecutor, seen from the backend."""

    def validate(self, request: TrainingRequest) -> list[str]: ...

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
        resume: bool = False,
    ) -> TrainingResult: ...


class TrainingRunner(Protocol):
    """Where an accepted operation runs (in-process, on a host …)."""

    def submit(self, op_id: str) -> None: ...

    def cancel(self, op_id: str) -> bool:
        """Ask a running operation to stop; False if this runner is not running it."""
        ...

    @property
    def queue_depth(self) -> int: ...


@dataclass(frozen=True)
class LogRecordLine:
    seq: int
    at: datetime
    level: str
    logger: str
    message: str


class OperationLogStore(Protocol):
    def append(self, op_id: str, line: LogRecordLine) -> None: ...

    def read(self, op_id: str, offset: int, limit: int) -> tuple[list[LogRecordLine], bool]:
        """Lines from ``offset``; the flag says lines were dropped because the log hit its bound."""
        ...


class StrategyCatalog(Protocol):
    def list_strategies(self) -> list[dict[str, Any]]: ...

    def read_text(self, name: str) -> str:
        """The YAML of a strategy file; StrategyNotFoundError if there is none."""
        ...

    def validate(self, text: str) -> dict[str, Any]:
        """Parse a strategy; ConfigError naming the field if it is invalid; a summary if not."""
        ...


class CommandCatalog(Protocol):
    def list_commands(self) -> list[CommandView]:
        """Every command template, valid or not."""
        ...

    def get(self, name: str) -> CommandView:
        """One valid template; CommandNotFoundError listing the known ones."""
        ...


class DatasetCatalog(Protocol):
    def list_datasets(self) -> list[dict[str, Any]]: ...

    def store(self, symbol: str, timeframe: str, content: bytes) -> dict[str, Any]:
        """Validate and store an uploaded candle CSV; DataError naming the row/column if invalid."""
        ...

    def store_table(self, name: str, source: BinaryIO, *, max_bytes: int) -> dict[str, Any]:
        """Stream an uploaded table (CSV or Parquet) to ``name`` once it passes the table checks;
        DataError naming the field, PayloadTooLargeError past ``max_bytes``."""
        ...

    def preview(self, name: str) -> dict[str, Any]:
        """Columns (dtype, missing values), row count and first rows of a data file."""
        ...

    def path_of(self, symbol: str, timeframe: str) -> Path:
        """The stored CSV; DataNotFoundError if absent."""
        ...

    def file_path(self, name: str) -> Path:
        """Any data file by its name relative to the data folder (``.csv`` may be omitted);
        DataError for a name that could leave the folder, DataNotFoundError if absent."""
        ...

    def write_samples(self) -> list[str]:
        """Write the seeded sample candles that are missing (never overwrite a file); their names."""
        ...


class ModelStore(Protocol):
    def list_models(self) -> list[dict[str, Any]]: ...

    def list_versions(self, strategy: str, name: str) -> list[dict[str, Any]]: ...

    def archive(self, strategy: str, name: str, version: int) -> tuple[str, Iterator[bytes]]:
        """A file name and the bytes of one archive holding every file of the version."""
        ...

    def delete(self, strategy: str, name: str, version: int) -> None: ...

    def onnx(self, strategy: str, name: str, version: int) -> tuple[str, bytes]:
        """A file name and the ONNX graph of one version (its files checked first); raises ExportError
        when the version is not a strategy or tabular network."""
        ...


class HostClient(Protocol):
    """A host service, one method per endpoint. Every method raises HostUnavailableError (retryable:
    no answer, 5xx, at capacity) or HostRejectedError (4xx, nonsense); none returns None on failure."""

    async def health(self, host: str) -> HostHealth: ...

    async def start(self, host: str, command: StartSession) -> SessionView: ...

    async def status(self, host: str, session_id: str) -> SessionView: ...

    async def stop(self, host: str, session_id: str) -> SessionView: ...

    async def result(self, host: str, session_id: str, *, max_bytes: int) -> bytes:
        """The raw result payload JSON (the same bytes the callback carries), returned only when the
        host signed the answer for this request; else HostRejectedError."""
        ...

    async def download_model(self, host: str, url: str, destination: Path, *, max_bytes: int) -> str:
        """Stream a model referenced by a payload (``url`` relative to ``host`` unless absolute); the
        answer's signed sha256 is checked against the bytes. Returns the sha256 of the bytes written
        (hashed as they streamed, so the caller need not read the file again)."""
        ...

    async def acknowledge(self, host: str, session_id: str) -> SessionView: ...

    async def sessions(self, host: str) -> SessionList: ...


class ResumeCheckpoints(Protocol):
    """The training checkpoints hosts shipped, one (the newest) per operation."""

    def latest(self, op_id: str) -> StoredCheckpoint | None: ...


class ModelValidator(Protocol):
    def validate(self, model_file: Path, config: dict[str, Any]) -> None:
        """Raise ResultRejectedError unless the file is a checkpoint of weights that fit ``config``."""
        ...


class ResultSink(Protocol):
    """Where an ingested host result is stored as a new model version."""

    def save(self, artifact: ModelArtifact) -> ModelRef: ...

    def find_by_operation(self, strategy: str, name: str, operation_id: str) -> ModelRef | None:
        """The version already stored for ``operation_id`` (an ingest that ran before), if any."""
        ...


class ResultClaimRepository(Protocol):
    """One claim per operation on storing its model: the database decides, not a lock in a process."""

    def claim(self, op_id: str, owner: str, at: datetime) -> ResultClaim:
        """Won when nobody claimed it yet, or the holder's backend is dead and its claim unfinished."""
        ...

    def claimed(self, op_id: str) -> bool:
        """Whether any ingest claimed ``op_id`` (and so may have stored its model) and kept the claim."""
        ...

    def record(self, op_id: str, owner: str, version: StoredVersion) -> None:
        """The version ``owner`` stored under its claim."""
        ...

    def release(self, op_id: str, owner: str) -> None:
        """Drop an unfinished claim of ``owner`` (its ingest was refused or failed)."""
        ...


class ReplayMemory(Protocol):
    """The ids of verified signed messages: each is accepted once."""

    def remember(self, msg_id: str, timestamp: int) -> None:
        """Record ``msg_id``; ``shared.contracts.replay.ReplayError`` when it was seen before."""
        ...


class AliasRepository(Protocol):
    """Model aliases and the record of every change to them."""

    def set(
        self, strategy: str, name: str, alias: str, version: int, *, by: str | None, at: datetime
    ) -> AliasChange:
        """Point ``alias`` at ``version`` atomically, recording the version it moved from."""
        ...

    def remove(
        self, strategy: str, name: str, alias: str, *, by: str | None, at: datetime
    ) -> AliasChange | None: ...

    def remove_version(
        self, strategy: str, name: str, version: int, *, by: str | None, at: datetime
    ) -> list[str]: ...

    def get(self, strategy: str, name: str, alias: str) -> ModelAlias | None: ...

    def of_model(self, strategy: str, name: str) -> list[ModelAlias]: ...

    def all(self) -> list[ModelAlias]: ...

    def history(self, strategy: str, name: str, *, limit: int = 200) -> list[AliasChange]: ...


class RayJobs(Protocol):
    """A Ray cluster's Jobs API, one method per call. Blocking (run them in a thread); each raises
    RayUnavailableError (no answer, 5xx) or RayRejectedError (Ray refused), never returns None on failure."""

    @property
    def address(self) -> str: ...

    def cluster(self) -> RayClusterState:
        """Version, nodes and their CPUs/GPUs (totals and free), healthy=True."""
        ...

    def submit(
        self, submission_id: str, entrypoint: str, *, env: Mapping[str, str], resources: JobResources
    ) -> None:
        """Submit a job; RayRejectedError with ``details['exists']`` when the id is taken."""
        ...

    def job(self, submission_id: str) -> RayJob | None:
        """The job's status, None when the cluster has no job of that id."""
        ...

    def jobs(self) -> list[RayJob]:
        """Every job the cluster knows (submitted ones: those with a submission id)."""
        ...

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job (SIGTERM, then SIGKILL); False when it had ended already."""
        ...

    def logs(self, submission_id: str) -> str:
        """The job's whole driver log so far."""
        ...


class RemoteBackend(Protocol):
    """Where a remote execution mode runs a training (host sessions, Ray jobs): the one seam the
    RemoteRunner and its follower drive. Placement (which host, what resources) is the mode's own."""

    #: The execution mode it serves (``host``, ``ray``).
    mode: str
    #: The error code of a run lost for reasons of the infrastructure (``host_lost``, ``ray_job_lost``).
    lost_code: str

    async def start(self, where: str, command: StartSession, resources: JobResources) -> RemoteRun:
        """Start the training; the adapter's own errors (HostError, RayError) when it cannot. A Ray job
        whose submission id is taken already is adopted, not started twice."""
        ...

    async def status(self, run: RemoteRun, log_cursor: int) -> RemoteStatus:
        """One look at the run, with its log lines after ``log_cursor``; SILENT (never raises) when the
        remote side does not answer."""
        ...

    async def stop(self, run: RemoteRun) -> None:
        """Ask the remote side to stop the run; BackendError when the request failed."""
        ...

    async def fetch_result(self, run: RemoteRun, *, max_bytes: int) -> bytes | None:
        """The run's signed result payload (what the callback carries); None when the run delivers its
        result itself and there is nothing to pull."""
        ...

    async def acknowledge(self, run: RemoteRun) -> None:
        """The run's result is stored: the remote side may drop its copy (best effort)."""
        ...

    def describe(self, run: RemoteRun) -> str:
        """For messages: ``session s1 on host http://h1``, ``Ray job op-1 on http://head:8265``."""
        ...

    def details(self, run: RemoteRun) -> dict[str, Any]:
        """Where it ran, for an OperationError's details."""
        ...

    def silence_error(self, run: RemoteRun, silent_s: float, reason: str, lease_s: float) -> OperationError:
        """The error of a run whose remote side stayed silent past the lease."""
        ...
