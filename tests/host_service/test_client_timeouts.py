"""Dataset downloads run under MODELYARD_HOST_DOWNLOAD_TIMEOUT_S, result callbacks under
MODELYARD_HOST_CALLBACK_TIMEOUT_S: each client gets its budget where it is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host_service.conftest import (
    FakeBackend,
    host_settings,
    run_host,
    start_body,
    wait_for,
    write_fake_result,
)
from tests.host_service.fakes import FakeLauncher

pytestmark = pytest.mark.anyio


async def test_downloads_and_callbacks_each_use_their_own_configured_timeout(tmp_path: Path) -> None:
    settings = host_settings(tmp_path, download_timeout_s=987.0, callback_timeout_s=12.0)
    launcher, backend = FakeLauncher(), FakeBackend()
    async for host in run_host(settings, launcher, backend):
        assert (await host.client.post("/training/start", json=start_body())).status_code == 202
        await wait_for(lambda: len(launcher.workers) == 1)
        launcher.workers[0].complete(write_fake_result())
        await wait_for(lambda: backend.callbacks)
        [download] = backend.downloads
        assert download.extensions["timeout"]["read"] == 987.0
        assert download.extensions["timeout"]["connect"] == 5.0
        assert host.backend.callbacks[0].extensions["timeout"]["read"] == 12.0
