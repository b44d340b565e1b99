"""create_app(): the host service's FastAPI app; its lifespan is the one place adapters are built."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import httpx
from fastapi import FastAPI

from host_service.adapters.backend_client import CallbackRetryPolicy, HttpBackendClient
from host_service.adapters.command_templates import CommandTemplates
from host_service.adapters.session_store import DiskSessionStore
from host_service.adapters.session_writer import SessionWriter
from host_service.adapters.worker_process import ForkServerWorkerLauncher
from host_service.api import health, training
from host_service.api.dependencies import HostComponents
from host_service.api.errors import install_error_handlers
from host_service.api.signatures import SignatureMiddleware
from host_service.domain.ports import Clock, NewId, WorkerLauncher
from host_service.services.capacity import CapacityLedger
from host_service.services.checkpoint_shipper import CheckpointShipper
from host_service.services.datasets import DatasetCache
from host_service.services.handoff import ResultHandoff
from host_service.services.sessions import SessionService
from host_service.services.supervision import RunnerTimings
from host_service.settings import HostSettings
from shared.contracts.checkpoint_shipping import CheckpointSettings
from shared.contracts.replay import ReplayGuard

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_session_id() -> str:
    return f"hs_{uuid.uuid4().hex[:16]}"


def create_app(
    settings: HostSettings | None = None,
    *,
    launcher: WorkerLauncher | None = None,
    backend_transport: httpx.AsyncBaseTransport | None = None,
    retry_policy: CallbackRetryPolicy | None = None,
    device: dict[str, Any] | None = None,
    clock: Clock = utc_now,
    new_id: NewId = new_session_id,
) -> FastAPI:
    """The app; tests inject a fake ``launcher``, a MockTransport for the backend and a no-wait policy."""
    settings = settings or HostSettings()
    version = _version()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.secrets:
            logger.warning(
                "no MODELYARD_SHARED_SECRET configured: requests and callbacks are NOT signed; "
                "acceptable on loopback for development only"
            )
        # Two clients, two budgets: a callback is small, a dataset download may be large and slow.
        callback_timeout = httpx.Timeout(settings.callback_timeout_s, connect=5.0)
        download_timeout = httpx.Timeout(settings.download_timeout_s, connect=5.0)
        async with (
            httpx.AsyncClient(timeout=callback_timeout, transport=backend_transport) as client,
            httpx.AsyncClient(timeout=download_timeout, transport=backend_transport) as downloads,
        ):
            clients = (client, downloads)
            own = None if launcher is not None else _warm_launcher(settings)
            chosen = launcher or own
            assert chosen is not None
            components = _build(settings, clients, chosen, retry_policy, device, clock, new_id, version)
            components.sessions.recover()
            app.state.components = components
            logger.info(
                "host service %s ready on %s (%s), capacity %d, work dir %s, commands folder %s",
                version,
                components.device["kind"],
                components.device["name"],
                settings.capacity,
                settings.work_dir,
                settings.commands_folder,
            )
            try:
                yield
            finally:
                await components.sessions.shutdown()
                if own is not None:  # its idle worker: no process of the host outlives it
                    await asyncio.to_thread(own.close)

    app = FastAPI(title="modelyard host service", version=version, lifespan=lifespan)
    app.add_middleware(
        SignatureMiddleware,
        secrets=settings.secrets,
        tolerance_s=settings.signature_tolerance_s,
        max_body_bytes=settings.max_request_bytes,
        replay=ReplayGuard(settings.signature_tolerance_s),
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(training.router)
    return app


def _warm_launcher(settings: HostSettings) -> ForkServerWorkerLauncher:
    launcher = ForkServerWorkerLauncher(threads=settings.training_threads)
    launcher.warm_up()  # the first training then finds a warm worker waiting
    return launcher


def _build(
    settings: HostSettings,
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    launcher: WorkerLauncher,
    retry_policy: CallbackRetryPolicy | None,
    device: dict[str, Any] | None,
    clock: Clock,
    new_id: NewId,
    version: str,
) -> HostComponents:
    policy = retry_policy or CallbackRetryPolicy(
        attempts=settings.callback_attempts,
        initial_wait_s=settings.callback_initial_wait_s,
        max_wait_s=settings.callback_max_wait_s,
    )
    callbacks, downloads = clients
    backend = HttpBackendClient(callbacks, settings.secrets, policy, download_client=downloads)
    store = DiskSessionStore(settings.work_dir)
    ledger = CapacityLedger(settings.capacity, retry_after_s=settings.retry_after_s)
    handoff = ResultHandoff(
        store,
        backend,
        inline_limit_bytes=settings.inline_model_limit_bytes,
        gzip_level=settings.gzip_level,
        public_url=settings.public_url,
    )
    templates = CommandTemplates(settings.commands_folder)
    if settings.sample_commands:
        templates.write_samples()
    checkpoints = CheckpointSettings(
        every_epochs=settings.checkpoint_every_epochs,
        min_interval_s=settings.checkpoint_min_interval_s,
        poll_s=settings.checkpoint_poll_s,
    )
    sessions = SessionService(
        shipper=CheckpointShipper(backend, checkpoints),
        requests=templates,
        commands_dir=settings.commands_folder,
        store=store,
        writer=SessionWriter(store),
        ledger=ledger,
        datasets=DatasetCache(settings.work_dir / "cache", backend),
        launcher=launcher,
        handoff=handoff,
        clock=clock,
        new_id=new_id,
        timings=RunnerTimings(
            grace_s=settings.stop_grace_s,
            poll_interval_s=settings.poll_interval_s,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            persist_interval_s=settings.progress_persist_interval_s,
        ),
    )
    return HostComponents(
        settings=settings, sessions=sessions, ledger=ledger, device=device or _probe_device(), version=version
    )


def _probe_device() -> dict[str, Any]:
    from shared.trainkit.devices import describe_device, select_device

    return describe_device(select_device("auto"))


def _version() -> str:
    try:
        return metadata.version("modelyard")
    except metadata.PackageNotFoundError:
        return "0.0.0"
