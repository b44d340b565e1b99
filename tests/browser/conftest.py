"""A real backend on 127.0.0.1 and Debian's headless Chromium driven by Playwright.

The whole module skips (with the reason) when Chromium or the playwright package is missing. Every
page a test opens records console errors and uncaught page errors; a test fails if any appeared.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import backend_env, free_port, wait_healthy
from tests.services import service_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0
VIEWPORT = {"width": 1280, "height": 800}
# Also keep the screenshots here when set (the temp folder is removed with pytest's other temp files).
SCREENSHOTS_ENV = "MODELYARD_SCREENSHOTS_DIR"


class Backend:
    """``python -m backend.server`` in its own working folder, with sample data generated at start."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = backend_env(
            self.port,
            workdir,
            workdir / "data",
            MODELYARD_PROGRESS_WRITE_INTERVAL_S="0.1",
            MODELYARD_SSE_HEARTBEAT_S="2",
            MODELYARD_DEFAULT_EXECUTION_MODE="local",
            MODELYARD_SHUTDOWN_TIMEOUT_S="5",
            **settings,
        )
        self.log_path = workdir / "server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.server"],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self) -> None:
        wait_healthy(self.url, self.proc, START_DEADLINE_S, log=self.log_path)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def start_training(self, labels: dict[str, Any] | None = None, **overrides: Any) -> str:
        """A trend_momentum training; ``labels`` adds request fields such as project, name and tags."""
        body: dict[str, Any] = {
            "strategy": "trend_momentum",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "execution_mode": "local",
            "overrides": overrides,
            **(labels or {}),
        }
        response = self.http.post("/api/v1/trainings", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["operation_id"])

    def wait_status(self, op_id: str, statuses: set[str], deadline_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            op: dict[str, Any] = self.http.get(f"/api/v1/operations/{op_id}").json()
            if op["status"] in statuses:
                return op
            time.sleep(0.1)
        raise AssertionError(f"{op_id} not in {statuses} within {deadline_s} s")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_DEADLINE_S)
        self._log.close()


@pytest.fixture(scope="package")
def playwright_api() -> Any:
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright import sync_api
    except ImportError:
        service_missing("the playwright package is missing: pip install playwright")
    return sync_api


@pytest.fixture(scope="package")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    server = Backend(tmp_path_factory.mktemp("backend"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser(playwright_api: Any) -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageProblems:
    """Console errors and page errors of one test; a test may allow the ones it provokes on purpose."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [item for item in self.items if not any(fragment in item for fragment in self.allowed)]

    def watch(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.items.append(f"console: {message.text}")


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Any, backend: Backend, problems: PageProblems) -> Iterator[Any]:
    """A fresh 1280x800 page on the backend; fails the test on any console or page error."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, base_url=backend.url)
    context.set_default_timeout(15_000)
    # Records how many points the train-loss line has each time the page changes (plot growth).
    context.add_init_script(
        """
        window.__lossCounts = [];
        new MutationObserver(() => {
          const entry = document.querySelector('#loss-chart [data-series="train loss"]');
          const n = entry ? Number(entry.dataset.count) : 0;
          if (n && window.__lossCounts.at(-1) !== n) window.__lossCounts.push(n);
        }).observe(document, { childList: true, subtree: true });
        """
    )
    tab = context.new_page()
    problems.watch(tab)
    try:
        yield tab
    finally:
        context.close()
    unexpected = problems.unexpected()
    assert not unexpected, "the browser reported errors:\n" + "\n".join(unexpected)


@pytest.fixture(scope="package")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("screens")
    yield folder
    keep = os.environ.get(SCREENSHOTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in folder.glob("*.png"):
            shutil.copy2(shot, Path(keep) / shot.name)


@pytest.fixture(scope="package")
def finished_runs(backend: Backend) -> list[str]:
    """Two short trainings, completed, for the models and compare pages."""
    ids = [
        backend.start_training(epochs=3, seed=1),
        backend.start_training(epochs=5, learning_rate=0.003, seed=2),
    ]
    for op_id in ids:
        assert backend.wait_status(op_id, {"completed", "failed", "cancelled"})["status"] == "completed"
    return ids


@pytest.fixture
def endless_training(backend: Backend) -> Iterator[str]:
    """A running training that never ends by itself; cancelled at teardown so it cannot block the queue."""
    op_id = backend.start_training(epochs=10_000, batch_size=64, early_stopping_patience=0)
    try:
        backend.wait_status(op_id, {"running"})
        yield op_id
    finally:
        backend.http.post(f"/api/v1/operations/{op_id}/cancel")  # 409 once it already ended: fine
        backend.wait_status(op_id, {"cancelled", "completed", "failed"})
