"""Run the backend under uvicorn: ``serve(settings)`` (the CLI calls it) or ``python -m backend.server``."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

from backend.main import create_app
from backend.settings import Settings, load_settings


class _Server(uvicorn.Server):
    """Ends open event streams as soon as shutdown starts: uvicorn waits for open responses before it
    runs the lifespan's shutdown, so streams must not wait for the lifespan to end them."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        components = getattr(self._app.state, "components", None)
        if components is not None:
            components.broker.close()
        super().handle_exit(sig, frame)


def serve(settings: Settings) -> None:
    """Serve the backend on ``settings.host:settings.port`` until SIGINT/SIGTERM."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s) + 5,
    )
    _Server(config, app).run()


if __name__ == "__main__":
    serve(load_settings())
