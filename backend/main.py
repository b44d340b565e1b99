"""create_app + lifespan: the one place the backend's resources are built and torn down.

``uvicorn --factory backend.main:create_app`` serves it with settings from the environment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from backend import dashboard
from backend.api.access import TokenAuth, document_security
from backend.api.error_handlers import install_error_handlers
from backend.api.middleware import BodySizeLimit, RequestMetrics
from backend.api.polled_reads import PolledReads
from backend.api.responses import declare_shared_responses, operation_id
from backend.api.routes import ROUTERS
from backend.api.views import OperationJson
from backend.components import Adapters, Components, build_components
from backend.domain.access import AuthMode, start_refusal, tokens_required
from backend.errors import AuthSetupError
from backend.services.runs_folder import check_shared_runs_folder, mark_runs_folder, unmark_runs_folder
from backend.settings import Settings, load_settings
from backend.version import VERSION
from shared.trainkit.workloads.command.catalog import has_commands, write_sample_commands
from shared.trainkit.workloads.strategy.sample_data import write_sample_strategies

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, adapters: Adapters | None = None) -> FastAPI:
    """The backend app. Nothing is opened until the lifespan starts."""
    settings = settings or load_settings()
    adapters = adapters or Adapters()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        components = await asyncio.to_thread(build_components, settings, adapters)
        app.state.components = components
        await start(components)
        try:
            yield
        finally:
            await stop(components)

    app = FastAPI(
        title="modelyard",
        version=VERSION,
        description="Submit trainings, follow them as operations, get versioned models back.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.operation_json = OperationJson()
    _document_security(app, settings)
    install_error_handlers(app)
    # Outermost last: metrics time everything; the token check refuses before the body is read; the
    # polled reads are answered past both.
    app.add_middleware(PolledReads)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(TokenAuth)
    app.add_middleware(RequestMetrics)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(dashboard.router)
    return app


def _document_security(app: FastAPI, settings: Settings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            public = settings.metrics_public
            schema = declare_shared_responses(build(), app.routes, metrics_public=public)
            app.openapi_schema = document_security(schema, metrics_public=public)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def start(components: Components) -> None:
    """Register this backend's lease, take over what dead backends left, then start taking work."""
    settings = components.settings
    logging.getLogger("backend").setLevel(settings.log_level)
    # One line per host poll and health check is noise at INFO; failures still show as warnings.
    logging.getLogger("httpx").setLevel(max(logging.getLevelName(settings.log_level), logging.WARNING))
    await asyncio.to_thread(check_auth, components)
    components.logs.install()
    lease = components.lease
    await asyncio.to_thread(mark_runs_folder, settings.runs_dir, lease.me.id)  # before others can see us
    await asyncio.to_thread(lease.register)
    taken_over = await asyncio.to_thread(lease.sweep)
    alone = not await asyncio.to_thread(lease.others_alive)
    await asyncio.to_thread(
        check_shared_runs_folder,
        settings.runs_dir,
        lease.me.id,
        lease.liveness().alive,
        stale_after_s=settings.instance_lease_s,
    )
    await asyncio.to_thread(prepare_folders, components, alone)
    await components.runner.start()
    await components.hosts.start()
    if components.ray is not None:
        await components.ray.start()
    requeued = await asyncio.to_thread(components.training.resume_after_restart)
    await lease.start()
    await components.model_sweeper.start()
    # After the re-queue: a sweep resumed here finds its trials' operations where the restart left them.
    await components.sweep_driver.start()
    logger.info(
        "backend %s ready: database %s, models %s, %d operation(s) taken over, %d re-queued, %d host(s) %s",
        lease.me.id,
        components.db.url.render_as_string(hide_password=True),
        settings.models_dir,
        len(taken_over),
        len(requeued),
        len(settings.hosts),
        [(s.url, "up" if s.healthy else "down") for s in components.registry.states()],
    )


def check_auth(components: Components) -> None:
    """Refuse to start where the API would be open to the network; say how tokens are checked."""
    settings = components.settings
    mode = AuthMode(settings.auth)
    usable = components.tokens.any_usable()
    insecure = settings.insecure_no_auth
    refusal = start_refusal(mode, listen_host=settings.host, tokens_exist=usable, insecure=insecure)
    exist = components.tokens.any_unrevoked()
    if refusal is not None:
        raise AuthSetupError(refusal)
    if insecure:
        logger.warning(
            "--insecure-no-auth: the whole API (submit, cancel, delete models, upload data) is open to "
            "anyone who reaches %s:%d; use it on a trusted network only",
            settings.host,
            settings.port,
        )
    elif tokens_required(mode, listen_host=settings.host, tokens_exist=exist, insecure=False):
        logger.info("API tokens required (MODELYARD_AUTH=%s)", mode.value)
    else:
        logger.info(
            "API tokens not required (MODELYARD_AUTH=%s, listening on %s): loopback callers only",
            mode.value,
            settings.host,
        )


def prepare_folders(components: Components, alone: bool) -> None:
    """Sweep crash leftovers from the model store (all of them only when no other backend is alive to
    be mid-save); write sample data and the sample strategies on a first start."""
    settings = components.settings
    for folder in (settings.models_dir, settings.data_dir, settings.runs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    components.model_sweeper.sweep(everything=alone)
    if settings.generate_sample_data and not any(settings.data_dir.glob("*.csv")):
        try:
            written = components.datasets.write_samples()
        except Exception:
            logger.exception("could not write sample data into %s", settings.data_dir)
        else:
            logger.info("wrote %d sample dataset(s) into %s", len(written), settings.data_dir)
    strategies = settings.strategies_dir
    has_strategies = strategies.is_dir() and any(p.suffix in (".yaml", ".yml") for p in strategies.iterdir())
    if settings.generate_sample_data and not has_strategies:
        try:
            added = write_sample_strategies(strategies)
        except OSError:
            logger.exception("could not write the sample strategies into %s", strategies)
        else:
            logger.info("wrote %d sample strateg(ies) into %s", len(added), strategies)

    commands = settings.commands_dir
    if settings.generate_sample_data and not has_commands(commands):
        try:
            written = write_sample_commands(commands)
        except OSError:
            logger.exception("could not write the sample commands into %s", commands)
        else:
            logger.info("wrote %d sample command file(s) into %s", len(written), commands)


async def stop(components: Components) -> None:
    await components.sweep_driver.stop()  # first: no new trial may start while the runner stops
    components.sweeps.close()
    components.broker.close()
    await components.hosts.stop()
    if components.ray is not None:
        await components.ray.stop()
    if components.http is not None:
        await components.http.aclose()
    await components.runner.stop(components.settings.shutdown_timeout_s)
    await components.model_sweeper.stop()
    await components.lease.stop()
    unmark_runs_folder(components.settings.runs_dir, components.lease.me.id)
    components.logs.uninstall()
    components.db.dispose()
    logger.info("backend stopped")
