"""create_app + lifespan: the one place the backend's resources are built and torn down.

``uvicorn --factory backend.main:create_app`` serves it with settings from the environment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from backend.api.error_handlers import install_error_handlers
from backend.api.middleware import BodySizeLimit, RequestMetrics
from backend.api.routes import api_router, root_router
from backend.components import Adapters, Components, build_components
from backend.settings import Settings, load_settings

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


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
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestMetrics)
    app.include_router(root_router)
    app.include_router(api_router)
    return app


async def start(components: Components) -> None:
    settings = components.settings
    logging.getLogger("backend").setLevel(settings.log_level)
    components.logs.install()
    await asyncio.to_thread(prepare_folders, components)
    await components.runner.start()
    requeued = await asyncio.to_thread(components.training.resume_after_restart)
    logger.info(
        "backend ready: database %s, models %s, %d operation(s) re-queued",
        components.db.url.render_as_string(hide_password=True),
        settings.models_dir,
        len(requeued),
    )


def prepare_folders(components: Components) -> None:
    """Sweep crash leftovers from the model store; write sample data on a first start."""
    settings = components.settings
    for folder in (settings.models_dir, settings.data_dir, settings.runs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    cleanup = getattr(components.models, "cleanup_stale", None)
    if cleanup is not None:
        removed = cleanup()
        if removed:
            logger.warning("removed %d half-written model folder(s): %s", len(removed), removed)
    if settings.generate_sample_data and not any(settings.data_dir.glob("*.csv")):
        try:
            written = components.datasets.write_samples()
        except Exception:
            logger.exception("could not write sample data into %s", settings.data_dir)
        else:
            logger.info("wrote %d sample dataset(s) into %s", len(written), settings.data_dir)


async def stop(components: Components) -> None:
    components.broker.close()
    await components.runner.stop(components.settings.shutdown_timeout_s)
    components.logs.uninstall()
    components.db.dispose()
    logger.info("backend stopped")
