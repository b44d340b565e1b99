"""The backend's object graph: which adapter implements which port, built in one place at start."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from backend.adapters.db.engine import build_engine, describe, migrate
from backend.adapters.db.operations import SqlOperationRepository
from backend.adapters.operation_logs import FileOperationLogStore
from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector, HostAvailability, NoHost
from backend.domain.ports import Clock, DatasetCatalog, ModelStore, StrategyCatalog, TrainingEngine
from backend.services.events import EventBroker
from backend.services.local_runner import LocalTrainingRunner
from backend.services.log_capture import LogCapture
from backend.services.operations import OperationsService
from backend.services.telemetry import Telemetry
from backend.services.training import TrainingService
from backend.settings import Settings

logger = logging.getLogger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Adapters:
    """The outside world as ports. Tests pass fakes; ``None`` fields get the real trainkit adapters."""

    engine: TrainingEngine | None = None
    strategies: StrategyCatalog | None = None
    datasets: DatasetCatalog | None = None
    models: ModelStore | None = None
    clock: Clock = field(default_factory=SystemClock)
    host: HostAvailability = field(default_factory=NoHost)


@dataclass
class Components:
    settings: Settings
    db: Engine
    operations: OperationsService
    training: TrainingService
    runner: LocalTrainingRunner
    selector: ExecutionModeSelector
    strategies: StrategyCatalog
    datasets: DatasetCatalog
    models: ModelStore
    logs: LogCapture
    log_store: FileOperationLogStore
    broker: EventBroker
    telemetry: Telemetry
    device: str


def _real_adapters(settings: Settings, given: Adapters) -> Adapters:
    """Fill in every port the caller did not fake with its trainkit-backed adapter."""
    from backend.adapters.catalogs import CandleFiles, StrategyFiles

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
        )
    return Adapters(
        engine=engine,
        strategies=given.strategies or StrategyFiles(settings.strategies_dir),
        datasets=given.datasets or CandleFiles(settings.data_dir),
        models=models,
        clock=given.clock,
        host=given.host,
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
    if not (adapters.engine and adapters.strategies and adapters.datasets and adapters.models):
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
    log_store = FileOperationLogStore(settings.logs_dir)
    logs = LogCapture(log_store)
    runner = LocalTrainingRunner(adapters.engine, operations, logs, concurrency=settings.local_concurrency)
    device = local_device()
    selector = ExecutionModeSelector(
        ExecutionMode(settings.default_execution_mode), adapters.host, local_has_gpu=device != "cpu"
    )
    training = TrainingService(
        operations, adapters.engine, adapters.strategies, selector, {ExecutionMode.LOCAL: runner}
    )
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
        datasets=adapters.datasets,
        models=adapters.models,
        logs=logs,
        log_store=log_store,
        broker=broker,
        telemetry=telemetry,
        device=device,
    )


def database_label(components: Components) -> str:
    return describe(components.db)
