"""The serving process keeps what start-up built out of later garbage collections (gc.freeze): a full
collection of it stalled the event loop for a quarter of a second now and then during a training."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvicorn

from backend.main import create_app
from backend.server import _Server, listen
from backend.settings import Settings
from tests.servers import free_port

pytestmark = pytest.mark.anyio


async def test_the_server_freezes_what_its_start_up_built(settings: Settings) -> None:
    port = free_port()
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"), app)
    sock = listen("127.0.0.1", port)
    gc.unfreeze()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                assert not serving.done(), serving
                await asyncio.sleep(0.02)
        assert gc.get_freeze_count() > 0
        components = app.state.components  # built by the lifespan, before the freeze
        assert gc.is_tracked(components)
        assert not any(components is o for o in gc.get_objects(generation=2))  # frozen, not in gen 2
    finally:
        gc.unfreeze()  # the other tests of this process must not inherit it
        server.should_exit = True
        async with asyncio.timeout(30):
            await serving
        sock.close()
