"""Run the backend under uvicorn: ``serve(settings)`` (the CLI calls it) or ``python -m backend.server``."""

from __future__ import annotations

import gc
import logging
import socket
import sys
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

from backend.components import standalone_tokens
from backend.domain.access import AuthMode, start_refusal
from backend.errors import AuthSetupError, ListenError, SettingsError
from backend.main import create_app
from backend.settings import Settings, load_settings
from shared.trainkit.cores import default_training_threads
from shared.trainkit.warm_start import load_training_stack

logger = logging.getLogger(__name__)

LISTEN_BACKLOG = 2048
#: How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005


class _Server(uvicorn.Server):
    """Ends open event streams as soon as shutdown starts: uvicorn waits for open responses before it
    runs the lifespan's shutdown, so streams must not wait for the lifespan to end them."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        load_training_stack_ahead()  # nothing is served yet: the loop has nothing else to do
        await super().startup(sockets)
        freeze_startup_objects()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        components = getattr(self._app.state, "components", None)
        if components is not None:
            components.broker.close()
        super().handle_exit(sig, frame)


def freeze_startup_objects() -> None:
    """Keep what start-up built (modules, torch, the training stack, the app, its components) out of
    every later garbage collection: a full collection walked all of it, holding the GIL, and stalled
    the event loop for ~250 ms now and then while a training allocated (the poll path's p99 under 100
    pollers fell from ~200 ms to ~35 ms, ``benchmarks/poll_load.py``). Only the serving process does
    this: it is started once, and frozen objects are never collected."""
    gc.collect()
    gc.freeze()


def load_training_stack_ahead() -> None:
    """Load what an in-process training loads on first use (``shared.trainkit.warm_start``) before the
    server answers, so that the start-up freeze covers it too.

    Loaded by the first local training instead, after the freeze, its ~1,100 modules (sympy through
    ``torch._dynamo``, numba, llvmlite) left 200,000 objects to the collector: each full collection
    walked them for 100-300 ms holding the GIL, two or three times in a training's first seconds, and
    the event loop answered nothing meanwhile. Under 100 pollers at 1 Hz one such pause put ~1 % of a
    10 s window above 100 ms (``benchmarks/poll_load.py``); frozen, a full collection during a
    training walks a few hundred objects. It also spares the first training those seconds of loading.
    A failure is only logged: the first training then loads what it needs and reports what failed."""
    started = time.perf_counter()
    try:
        load_training_stack()
    except Exception:
        logger.exception("loading the training stack ahead of the first training failed")
    else:
        logger.info("training stack loaded in %.1f s", time.perf_counter() - started)


def share_cores(settings: Settings, cores: int | None = None) -> int:
    """Give the server's in-process trainings ``MODELYARD_LOCAL_TRAINING_THREADS`` torch threads, by
    default one fewer than the cores: with one torch thread per core (torch's default) a training's
    threads take every core, spinning between operations, and the event loop that answers the API waits
    for the scheduler. On this 2-core machine, under 100 pollers, one torch thread instead of two cut
    the poll path's median from ~500 to ~10 ms and the training went faster (``benchmarks/poll_load.py``;
    a small model gains nothing from a second thread). Returns the number set."""
    import torch

    threads = settings.local_training_threads or default_training_threads(cores)
    torch.set_num_threads(threads)
    return threads


def hand_over_the_gil_sooner() -> None:
    """Let the event loop take the GIL from a training thread after 0.5 ms instead of 5: each time the
    loop wakes for a request while an in-process training runs Python code, it waited up to a whole
    switch interval, several times per request. Under 100 pollers during a training the poll path's
    median fell from 8-200 ms to ~3 ms and its p99 from 0.3-5 s to 85-150 ms on this busy 2-core
    machine (load 2-7, ``benchmarks/poll_load.py``); a thread running alone is never interrupted."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, claimed before the app starts: a second server on a taken port stops
    here, before its start-up could touch the database (restart recovery, re-queueing)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another modelyard server running "
            "there? Stop it or pick another port (--port / MODELYARD_PORT)",
            host=host,
            port=port,
        ) from exc
    return sock


def check_auth_setup(settings: Settings) -> None:
    """AuthSetupError before anything starts when the API would be open to the network (the lifespan
    checks again, for ``uvicorn --factory``; a failed lifespan start would only be logged)."""
    tokens_exist = False
    if not settings.insecure_no_auth:
        tokens, db = standalone_tokens(settings)
        try:
            tokens_exist = tokens.any_usable()
        finally:
            db.dispose()
    mode = AuthMode(settings.auth)
    refusal = start_refusal(
        mode, listen_host=settings.host, tokens_exist=tokens_exist, insecure=settings.insecure_no_auth
    )
    if refusal is not None:
        raise AuthSetupError(refusal)


def serve(settings: Settings) -> None:
    """Serve the backend on ``settings.host:settings.port`` until SIGINT/SIGTERM."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = listen(settings.host, settings.port)
    try:
        check_auth_setup(settings)
    except BaseException:
        sock.close()
        raise
    app = create_app(settings)
    logger.info("in-process trainings use %d torch thread(s)", share_cores(settings))
    hand_over_the_gil_sooner()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s) + 5,
    )
    try:
        _Server(config, app).run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    try:
        serve(load_settings())
    except (AuthSetupError, ListenError, SettingsError) as error:
        print(f"modelyard: {error.message}", file=sys.stderr)
        sys.exit(1)
