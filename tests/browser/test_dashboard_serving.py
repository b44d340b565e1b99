"""The dashboard's files and its two read-only API routes, over HTTP (no browser needed)."""

from __future__ import annotations

import hashlib
import re

import pytest

from backend.api.training_requests import training_request_view
from backend.dashboard.router import static_root
from tests.browser.conftest import Backend

pytestmark = [pytest.mark.e2e]

SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched


def test_page_is_served_at_the_root_with_module_scripts(backend: Backend) -> None:
    response = backend.http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/dashboard/js/app.js">' in response.text


def test_every_asset_the_page_imports_is_served_locally(backend: Backend) -> None:
    seen: set[str] = set()
    queue = ["/dashboard/js/app.js"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        response = backend.http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/javascript")
        urls = set(re.findall(r"https?://[^\s\"'`]+", response.text)) - {SVG_NAMESPACE}
        assert not urls, f"{path} reaches outside: {urls}"
        base = path.rsplit("/", 1)[0]
        for target in re.findall(r'from "(\.{1,2}/[^"]+)"', response.text):
            parts = f"{base}/{target}".split("/")
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            queue.append("/".join(resolved))
    assert len(seen) >= 10
    assert backend.http.get("/dashboard/css/dashboard.css").headers["content-type"].startswith("text/css")


def test_page_loads_the_vendored_uplot_before_the_app_from_the_package(backend: Backend) -> None:
    page = backend.http.get("/").text
    script = '<script defer src="/dashboard/vendor/uplot/uPlot.iife.min.js"></script>'
    assert '<link rel="stylesheet" href="/dashboard/vendor/uplot/uPlot.min.css">' in page
    assert script in page
    assert page.index(script) < page.index('src="/dashboard/js/app.js"')
    for path, media_type in [
        ("/dashboard/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
        ("/dashboard/vendor/uplot/uPlot.min.css", "text/css"),
    ]:
        response = backend.http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type), path
        assert response.content == static_root().joinpath(path.removeprefix("/dashboard/")).read_bytes()


def test_vendored_uplot_files_match_the_hashes_recorded_beside_them() -> None:
    folder = static_root().joinpath("vendor", "uplot")
    recorded = dict(
        re.findall(
            r"^\| `([^`]+)` \([^)]*\) \| `([0-9a-f]{64})` \|$", folder.joinpath("README.md").read_text(), re.M
        )
    )
    assert set(recorded) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in recorded.items():
        assert hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("path", ["/dashboard/../main.py", "/dashboard/js/missing.js", "/dashboard/index.py"])
def test_paths_outside_the_assets_are_not_found(backend: Backend, path: str) -> None:
    response = backend.http.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


def test_operation_request_names_strategy_symbol_and_overrides(backend: Backend) -> None:
    op_id = backend.start_training(epochs=2)
    body = backend.http.get(f"/api/v1/operations/{op_id}/request").json()
    assert body["strategy"] == "trend_momentum"
    assert (body["symbols"], body["timeframes"]) == (["EURUSD"], ["1h"])
    assert body["overrides"] == {"epochs": 2}
    backend.wait_status(op_id, {"completed", "failed", "cancelled"})


def test_request_of_an_unknown_operation_is_404(backend: Backend) -> None:
    response = backend.http.get("/api/v1/operations/op_nope/request")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "operation_not_found"


def test_strategy_source_returns_the_file_and_names_known_ones_when_missing(backend: Backend) -> None:
    assert (
        "name: trend_momentum" in backend.http.get("/api/v1/strategies/trend_momentum/source").json()["yaml"]
    )
    missing = backend.http.get("/api/v1/strategies/nope/source")
    assert missing.status_code == 404
    assert "trend_momentum" in missing.json()["error"]["message"]


def test_request_view_of_a_command_run_names_the_command_and_its_data() -> None:
    request = {
        "workload": "command",
        "command": {"name": "toy", "params": {"steps": 300}, "dataset": "speech/"},
        "name": "toy-1",
    }
    view = training_request_view("op_1", request)
    assert view.command is not None
    assert (view.workload.value, view.command.model_dump(exclude_none=True), view.name) == (
        "command",
        request["command"],
        "toy-1",
    )
    assert view.symbols == []
