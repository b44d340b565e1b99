"""The backend's object graph: which adapter implements which port, built in one place at start."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine

from backend.adapters.db.aliases import SqlAliasRepository
from backend.adapters.db.engine import build_engine, describe, migrate
from backend.adapters.db.instances import SqlInstanceRepository
from backend.adapters.db.operations import SqlOperationRepository
from backend.adapters.db.replay import SqlReplayGuard
from backend.adapters.db.results import SqlResultClaimRepository
from backend.adapters.db.sweeps import SqlSweepRepository
from backend.adapters.db.tokens import SqlTokenRepository
from backend.adapters.host_client import HostRetryPolicy, HostTimeouts, HttpHostClient
from backend.adapters.host_sessions import HostSessions
from backend.adapters.operation_logs import FileOperationLogStore
from backend.adapters.ray_runs import RayJobRuns
from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector, HostAvailability
from backend.domain.job_tokens import JobTokenKey, derive_key
from backend.domain.ports import (
    Clock,
    CommandCatalog,
    DatasetCatalog,
    HostClient,
    ModelStore,
    ModelValidator,
    RayJobs,
    ReplayMemory,
    ResultSink,
    StrategyCatalog,
    TrainingEngine,
)
from backend.domain.remote_runs import RemoteTimings
from backend.services.access_tokens import TokenService
from backend.services.checkpoint_store import CheckpointStore
from backend.services.events import EventBroker
from backend.services.health import DatabaseHealth
from backend.services.host_placement import HostPlacement
from backend.services.host_registry import HostRegistry
from backend.services.instance_lease import InstanceLease
from backend.services.local_runner import LocalTrainingRunner
from backend.services.log_capture import LogCapture
from backend.services.model_aliases import ModelAliasService
from backend.services.operations import OperationsService
from backend.services.ray_cluster import RayClusterMonitor
from backend.services.ray_placement import RayPlacement, RayTimings
from backend.services.remote_follower import Ingest
from backend.services.remote_runner import RemoteRunner
from backend.services.result_ingest import IngestLimits, ResultIngest
from backend.services.session_commands import SessionCommands
from backend.services.stale_models import StaleModelSweeper
from backend.services.sweep_driver import SweepDriver
from backend.services.sweeps import SweepService
from backend.services.telemetry import Telemetry
from backend.services.training import TrainingService
from backend.settings import Settings
from shared.contracts.signing import DEFAULT_TOLERANCE_S

logger = logging.getLogger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Adapters:
    """The outside world as ports. Tests pass fakes; ``None`` fields get the real trainkit adapters."""

    engine: TrainingEngine | None = None
    strategies: StrategyCatalog | None = None
    commands: CommandCatalog | None = None
    datasets: DatasetCatalog | None = None
    models: ModelStore | None = None
    clock: Clock = field(default_factory=SystemClock)
    #: None: the host registry answers (MODELYARD_HOSTS, health-checked in the background).
    host: HostAvailability | None = None
    host_client: HostClient | None = None
    #: For tests: an httpx transport under the real HttpHostClient (e.g. MockTransport).
    host_transport: httpx.AsyncBaseTransport | None = None
    host_retry: HostRetryPolicy | None = None
    sink: ResultSink | None = None
    validator: ModelValidator | None = None
    #: For tests: the Ray Jobs API (None: Ray's SDK at MODELYARD_RAY_ADDRESS, when it is set).
    ray_jobs: RayJobs | None = None


@dataclass
class Components:
    settings: Settings
    db: Engine
    operations: OperationsService
    training: TrainingService
    runner: LocalTrainingRunner
    selector: ExecutionModeSelector
    strategies: StrategyCatalog
    commands: CommandCatalog
    datasets: DatasetCatalog
    models: ModelStore
    logs: LogCapture
    log_store: FileOperationLogStore
    broker: EventBroker
    telemetry: Telemetry
    device: str
    registry: HostRegistry
    #: Host mode's runner (placement on the configured hosts, one follower per session).
    hosts: RemoteRunner
    ingest: ResultIngest
    http: httpx.AsyncClient | None
    lease: InstanceLease
    model_sweeper: StaleModelSweeper
    #: Every signed host message's webhook-id, while its timestamp is acceptable (refused when repeated).
    host_replay: ReplayMemory
    tokens: TokenService
    health: DatabaseHealth
    aliases: ModelAliasService
    sweeps: SweepService
    sweep_driver: SweepDriver
    #: The newest training checkpoint each host training shipped (``backend.api.checkpoints``).
    checkpoints: CheckpointStore
    #: Ray mode's runner; None when MODELYARD_RAY_ADDRESS is unset.
    ray: RemoteRunner | None = None
    #: Mints and verifies the credentials of Ray jobs, their job tokens (``backend.api.ray_jobs``).
    job_tokens: JobTokenKey = field(default_factory=lambda: JobTokenKey(secrets.token_bytes(32)))


def _real_adapters(settings: Settings, given: Adapters) -> Adapters:
    """Fill in every port the caller did not fake with its trainkit-backed adapter."""
    from backend.adapters.catalogs import StrategyFiles
    from backend.adapters.command_files import CommandFiles
    from backend.adapters.data_folder import DataFolder

    models = given.models
    engine = given.engine
    if models is None or engine is None:
        from backend.adapters.executor import ExecutorEngine
        from backend.adapters.storage import LocalModelStore

        store = LocalModelStore.at(settings.models_dir)
        models = models or store
        engine = engine or ExecutorEngine(
            settings.data_dir,
            store.storage,
            runs_dir=settings.runs_dir,
            plugin_allowlist=settings.plugin_allowlist,
            commands_dir=settings.commands_dir,
            checkpoint_every_epochs=settings.checkpoint_every_epochs,
            checkpoint_min_interval_s=settings.checkpoint_min_interval_s,
        )
    sink = given.sink
    if sink is None:
        from backend.adapters.storage import LocalModelStore

        sink = models if isinstance(models, LocalModelStore) else LocalModelStore.at(settings.models_dir)
    validator = given.validator
    if validator is None:
        from backend.adapters.model_validation import CheckpointValidator

        validator = CheckpointValidator()
    return Adapters(
        engine=engine,
        strategies=given.strategies or StrategyFiles(settings.strategies_dir),
        commands=given.commands or CommandFiles(settings.commands_dir),
        datasets=given.datasets or DataFolder(settings.data_dir),
        models=models,
        clock=given.clock,
        host=given.host,
        host_client=given.host_client,
        host_transport=given.host_transport,
        host_retry=given.host_retry,
        sink=sink,
        validator=validator,
        ray_jobs=given.ray_jobs,
    )


def _host_client(settings: Settings, given: Adapters) -> tuple[HostClient, httpx.AsyncClient | None]:
    """The client every host call goes through; its timeouts are decided here, once."""
    if given.host_client is not None:
        return given.host_client, None
    timeouts = HostTimeouts(
        connect_s=min(settings.host_health_timeout_s, settings.host_request_timeout_s),
        health_s=settings.host_health_timeout_s,
        request_s=settings.host_request_timeout_s,
        transfer_s=settings.host_transfer_timeout_s,
    )
    http = httpx.AsyncClient(timeout=timeouts.request(), transport=given.host_transport)
    return HttpHostClient(http, settings.secrets, timeouts=timeouts, policy=given.host_retry), http


def host_timings(settings: Settings) -> RemoteTimings:
    return RemoteTimings(
        lease_s=settings.host_lease_s,
        poll_initial_s=settings.host_poll_initial_s,
        poll_max_s=max(settings.host_poll_max_s, settings.host_poll_initial_s),
        result_pull_delay_s=settings.host_result_pull_delay_s,
        cancel_grace_s=settings.cancel_grace_s,
        max_retries=settings.max_retries,
        sweep_interval_s=max(min(settings.host_lease_s / 2, 5.0), 0.1),
        callback_max_bytes=settings.callback_max_bytes,
    )


def local_device() -> str:
    """The device a local training would use (CUDA > MPS > CPU), without failing when torch is absent."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def build_components(settings: Settings, given: Adapters) -> Components:
    adapters = _real_adapters(settings, given)
    if not (
        adapters.engine
        and adapters.strategies
        and adapters.commands
        and adapters.datasets
        and adapters.models
        and adapters.sink
        and adapters.validator
    ):
        raise RuntimeError("every port must have an adapter")
    db = build_engine(settings.database_url)
    migrate(db)
    broker = EventBroker()
    operations = OperationsService(
        SqlOperationRepository(db),
        adapters.clock,
        broker,
        progress_interval_s=settings.progress_write_interval_s,
    )
    lease = InstanceLease(
        SqlInstanceRepository(db),
        operations,
        adapters.clock,
        lease_s=settings.instance_lease_s,
        max_retries=settings.max_retries,
    )
    log_store = FileOperationLogStore(settings.logs_dir)
    logs = LogCapture(log_store)
    runner = LocalTrainingRunner(adapters.engine, operations, logs, concurrency=settings.local_concurrency)
    operations.on_changed_elsewhere(runner.stop_if_changed_elsewhere)
    device = local_device()
    client, http = _host_client(settings, adapters)
    registry = HostRegistry(
        settings.hosts, client, adapters.clock, interval_s=settings.host_health_interval_s
    )
    limits = IngestLimits(settings.inline_model_max_bytes, settings.max_model_bytes)
    claims = SqlResultClaimRepository(db, lease_s=settings.instance_lease_s)
    ingest = ResultIngest(
        operations,
        adapters.sink,
        adapters.validator,
        client,
        claims=claims,
        limits=limits,
        uploads_dir=settings.runs_dir / "ray-uploads",
    )
    checkpoints = CheckpointStore(settings.runs_dir, max_bytes=settings.checkpoint_max_bytes)
    commands = SessionCommands(adapters.datasets, settings.backend_url, checkpoints=checkpoints)
    hosts = _host_runner(settings, operations, registry, client, ingest, logs, commands, runner)
    job_tokens = derive_key(settings.secrets, _job_key(settings))
    ray, ray_cluster = _ray_runner(settings, adapters, operations, ingest, logs, commands, job_tokens)
    selector = ExecutionModeSelector(
        ExecutionMode(settings.default_execution_mode),
        adapters.host or registry,
        local_has_gpu=device != "cpu",
        ray=ray_cluster,
    )
    training = TrainingService(
        operations,
        adapters.engine,
        adapters.strategies,
        selector,
        {
            ExecutionMode.LOCAL: runner,
            ExecutionMode.HOST: hosts,
            **({ExecutionMode.RAY: ray} if ray is not None else {}),
        },
        logs=logs,
    )
    lease.on_pending_adopted(training.requeue)
    aliases = ModelAliasService(SqlAliasRepository(db), adapters.models, adapters.clock)
    sweeps = _sweeps(settings, db, operations, training, adapters, aliases, lease)
    telemetry = Telemetry(operations, lambda: runner.running)
    operations.on_terminal(telemetry.observe_terminal)
    return Components(
        settings=settings,
        db=db,
        operations=operations,
        training=training,
        runner=runner,
        selector=selector,
        strategies=adapters.strategies,
        commands=adapters.commands,
        datasets=adapters.datasets,
        models=adapters.models,
        logs=logs,
        log_store=log_store,
        broker=broker,
        telemetry=telemetry,
        device=device,
        registry=registry,
        hosts=hosts,
        ingest=ingest,
        http=http,
        lease=lease,
        model_sweeper=StaleModelSweeper(
            getattr(adapters.models, "cleanup_stale", None), ingest.cleanup_uploads
        ),
        host_replay=SqlReplayGuard(db, DEFAULT_TOLERANCE_S),
        tokens=TokenService(SqlTokenRepository(db), adapters.clock),
        health=DatabaseHealth(operations.ping, max_age_s=settings.health_cache_s),
        aliases=aliases,
        sweeps=sweeps,
        sweep_driver=SweepDriver(sweeps, broker, poll_s=settings.sweep_poll_interval_s),
        checkpoints=checkpoints,
        ray=ray,
        job_tokens=job_tokens,
    )


def _sweeps(
    settings: Settings,
    db: Engine,
    operations: OperationsService,
    training: TrainingService,
    adapters: Adapters,
    aliases: ModelAliasService,
    lease: InstanceLease,
) -> SweepService:
    if adapters.strategies is None or adapters.commands is None:
        raise RuntimeError("every port must have an adapter")
    return SweepService(
        SqlSweepRepository(db),
        db.url.render_as_string(hide_password=False),
        operations,
        training,
        adapters.strategies,
        adapters.commands,
        aliases,
        adapters.clock,
        max_trials=settings.sweep_max_trials,
        liveness=lease.liveness,
    )


def _job_key(settings: Settings) -> bytes:
    """The job tokens' key where no shared secret is set: random, kept beside the runs (0600) so a
    restarted backend (or another one on the same volume) still accepts its running jobs' tokens."""
    path = settings.runs_dir / "job-token.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        return key


def _host_runner(
    settings: Settings,
    operations: OperationsService,
    registry: HostRegistry,
    client: HostClient,
    ingest: ResultIngest,
    logs: LogCapture,
    commands: SessionCommands,
    fallback: LocalTrainingRunner,
) -> RemoteRunner:
    timings = host_timings(settings)
    backend = HostSessions(client, ingest.acknowledge)
    placement = HostPlacement(
        operations,
        registry,
        backend,
        commands,
        fallback,
        lease_s=timings.lease_s,
        poll_max_s=timings.poll_max_s,
    )
    return RemoteRunner(operations, backend, placement, ingest.ingest, logs, commands, timings=timings)


def _ray_runner(
    settings: Settings,
    adapters: Adapters,
    operations: OperationsService,
    ingest: ResultIngest,
    logs: LogCapture,
    commands: SessionCommands,
    key: JobTokenKey,
) -> tuple[RemoteRunner | None, RayClusterMonitor | None]:
    """Ray mode's runner and the cluster monitor the selector asks; both None without a cluster."""
    jobs = adapters.ray_jobs
    if jobs is None and settings.ray_address:
        from backend.adapters.ray_jobs import RayJobsClient

        jobs = RayJobsClient(settings.ray_address, timeout_s=settings.ray_request_timeout_s)
    if jobs is None:
        return None, None
    monitor = RayClusterMonitor(jobs, adapters.clock, interval_s=settings.ray_health_interval_s)
    timings = RayTimings(
        poll_s=settings.ray_poll_s,
        lease_s=settings.ray_lease_s,
        cancel_grace_s=settings.cancel_grace_s,
        sweep_interval_s=max(min(settings.ray_lease_s / 2, 5.0), 0.1),
        token_ttl_s=settings.ray_job_token_ttl_s,
        max_retries=settings.max_retries,
    )
    runner = ray_runner(
        operations,
        monitor,
        ingest.ingest,
        logs,
        key,
        commands,
        backend_url=settings.backend_url,
        entrypoint=settings.ray_entrypoint,
        commands_dir=settings.ray_commands_dir,
        checkpoints=(settings.checkpoint_every_epochs, settings.checkpoint_min_interval_s),
        timings=timings,
    )
    return runner, monitor


def ray_runner(
    operations: OperationsService,
    monitor: RayClusterMonitor,
    ingest: Ingest,
    logs: LogCapture,
    key: JobTokenKey,
    commands: SessionCommands,
    *,
    backend_url: str,
    entrypoint: str,
    timings: RayTimings,
    commands_dir: str | None = None,
    checkpoints: tuple[int, float] = (1, 30.0),
) -> RemoteRunner:
    """Ray mode's RemoteRunner: RayJobRuns as its backend, RayPlacement as its placement."""
    ttl = timedelta(seconds=timings.token_ttl_s)
    backend = RayJobRuns(
        monitor.jobs,
        backend_url=backend_url,
        entrypoint=entrypoint,
        commands_dir=commands_dir,
        checkpoints=checkpoints,
        mint_token=lambda submission_id: key.mint(submission_id, operations.now() + ttl),
        result_grace_s=timings.result_grace_s,
    )
    placement = RayPlacement(operations, monitor, backend, commands, timings=timings)
    return RemoteRunner(operations, backend, placement, ingest, logs, commands, timings=timings.remote())


def standalone_tokens(settings: Settings) -> tuple[TokenService, Engine]:
    """The token service on the settings' database, migrated, for the CLI and the start check (no app
    running). The caller disposes of the engine."""
    db = build_engine(settings.database_url)
    try:
        migrate(db)
    except Exception:
        db.dispose()
        raise
    return TokenService(SqlTokenRepository(db), SystemClock()), db


def database_label(components: Components) -> str:
    return describe(components.db)
