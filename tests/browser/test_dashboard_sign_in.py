"""Signing in to a backend that requires API tokens: refused and accepted tokens, who started a training,
a scope too small, signing out. The token lives in the tab's sessionStorage only."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, PageProblems
from tests.servers import backend_env, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN_NAME = "laptop"
WRONG_TOKEN = "myd_" + "x" * 43
#: Chromium logs each refused request as a console error; the test provokes these on purpose.
REFUSED = "the server responded with a status of 401"
FORBIDDEN = "the server responded with a status of 403"
LOADED_MACHINE_TIMEOUT_MS = 150_000
CLI = [sys.executable, "-c", "from backend.cli import main; main()"]


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A ``train`` token made with the CLI on the database of the backend about to start."""
    workdir = tmp_path_factory.mktemp("secured")
    env = backend_env(free_port(), workdir, workdir / "data")  # the port is not used: no server yet
    created = subprocess.run(
        [*CLI, "tokens", "create", TOKEN_NAME, "--scope", "train"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    return workdir, created.stdout.strip()


@pytest.fixture(scope="module")
def backend(token: tuple[Path, str]) -> Iterator[Backend]:
    """Overrides the package's open backend for this module: tokens required even on loopback."""
    workdir, secret = token
    server = Backend(workdir, MODELYARD_AUTH="required")
    server.http.headers["Authorization"] = f"Bearer {secret}"
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def sign_in(page: Any, secret: str) -> None:
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_start_a_training_and_sign_out(
    page: Any, backend: Backend, token: tuple[Path, str], problems: PageProblems
) -> None:
    problems.allow(REFUSED)
    _, secret = token
    page.goto("/")
    page.wait_for_selector("#sign-in-form")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert page.locator("#sign-out").is_hidden()

    sign_in(page, WRONG_TOKEN)
    refused = backend.http.get("/api/v1/system", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert refused.status_code == 401
    error = page.locator("#token-error")
    error.filter(has_text="Token refused").wait_for()
    assert refused.json()["error"]["message"] in error.inner_text()
    assert page.get_by_label("API token").get_attribute("aria-invalid") == "true"
    assert page.evaluate("sessionStorage.getItem('modelyard.token')") is None

    sign_in(page, secret)
    page.wait_for_selector("#trainings-table")
    assert page.locator("#sign-out").is_visible()
    assert page.evaluate("sessionStorage.getItem('modelyard.token')") == secret

    page.goto("/#/new")
    page.locator('[data-dataset="EURUSD_1h"] input').check()
    page.click("#wizard-next")
    page.locator('[data-strategy="trend_momentum"] input').check()
    page.click("#wizard-next")
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Execution mode").select_option("local")
    page.click("#wizard-next")
    page.click("#wizard-next")  # Start training
    page.wait_for_url(re.compile(r"#/trainings/op_"))
    op_id = page.url.rsplit("/", 1)[-1]
    page.locator("#who").filter(has_text=f"submitted by {TOKEN_NAME}").wait_for()
    # The page follows the run to its end through the event stream, which needs the token too.
    page.wait_for_selector('#progress-panel [data-status="completed"]', timeout=LOADED_MACHINE_TIMEOUT_MS)
    assert backend.http.get(f"/api/v1/operations/{op_id}").json()["submitted_by"] == TOKEN_NAME
    # A plain link would reach the server without the header: the page fetches the file with the token.
    with page.expect_download() as download:
        page.click("#model-download")
    assert download.value.suggested_filename.endswith(".zip")
    assert Path(download.value.path()).stat().st_size > 0

    page.goto("/#/trainings")
    row = page.locator(f'tr[data-op="{op_id}"]')
    row.locator(".who").filter(has_text=f"submitted by {TOKEN_NAME}").wait_for()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("#sign-in-form")
    assert page.locator("#token-error").inner_text() == ""
    assert page.evaluate("sessionStorage.getItem('modelyard.token')") is None
    page.reload()
    page.wait_for_selector("#sign-in-form")


def test_a_scope_too_small_is_named_in_place_without_signing_out(
    page: Any, token: tuple[Path, str], problems: PageProblems
) -> None:
    problems.allow(REFUSED)
    problems.allow(FORBIDDEN)
    _, secret = token
    page.goto("/#/system")
    sign_in(page, secret)
    page.wait_for_selector("#default-mode-select")
    page.get_by_role("button", name="Save").click()
    message = page.locator(".field-error").filter(has_text="Not changed")
    message.wait_for()
    assert 'needs a token with the "admin" scope' in message.inner_text()
    assert page.locator("#sign-in-form").count() == 0
    assert page.locator("#sign-out").is_visible()
