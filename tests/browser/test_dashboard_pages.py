"""Models, compare, system, keyboard use, a narrow window and screenshots of every page."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Decodes a PNG in the browser and returns the standard deviation of its grey levels.
PIXEL_SPREAD_JS = """
async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, img.width, img.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < px.length; i += 16) {
    const g = (px[i] + px[i + 1] + px[i + 2]) / 3;
    sum += g; sq += g * g; n += 1;
  }
  const mean = sum / n;
  return Math.sqrt(sq / n - mean * mean);
}
"""

MIN_PIXEL_SPREAD = 8.0


def test_models_page_lists_the_new_version_and_downloads_it(page: Any, finished_runs: list[str]) -> None:
    page.goto("/#/models")
    model = page.locator('[data-model="trend_momentum/EURUSD_1h"]')
    model.locator("summary").click()
    latest = model.locator("tr:has(.badge.latest)")
    latest.wait_for()
    assert "%" in latest.inner_text()  # test accuracy shown
    with page.expect_download() as info:
        latest.locator('[data-action="download"]').click()
    archive = Path(info.value.path()).read_bytes()
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert any(name.endswith("metrics.json") for name in names), names


def test_models_page_onnx_button_downloads_a_graph_onnxruntime_runs(
    page: Any, finished_runs: list[str]
) -> None:
    import numpy as np
    import onnxruntime as ort

    page.goto("/#/models")
    model = page.locator('[data-model="trend_momentum/EURUSD_1h"]')
    model.locator("summary").click()
    latest = model.locator("tr:has(.badge.latest)")
    latest.wait_for()
    with page.expect_download() as info:
        latest.locator('[data-action="onnx"]').click()
    assert info.value.suggested_filename.endswith(".onnx")
    session = ort.InferenceSession(Path(info.value.path()).read_bytes(), providers=["CPUExecutionProvider"])
    width = session.get_inputs()[0].shape[1]
    (logits,) = session.run(None, {"features": np.zeros((2, width), dtype=np.float32)})
    assert logits.shape == (2, 3)  # BUY / HOLD / SELL


def test_models_page_sets_an_alias_and_shows_it_on_the_version(page: Any, backend: Backend) -> None:
    op_id = backend.start_training(epochs=1)
    model = backend.wait_status(op_id, {"completed"})["result"]["model"]
    page.goto("/#/models")
    entry = page.locator(f'[data-model="{model["strategy"]}/{model["name"]}"]')
    entry.locator("summary").click()
    form = entry.locator("form.alias-form")
    form.get_by_label("Alias").fill("browser-pick")
    form.get_by_label("Version").select_option(str(model["version"]))
    form.get_by_role("button", name="Set").click()
    badge = entry.locator(f'tr[data-version="{model["version"]}"] .badge.alias[data-alias="browser-pick"]')
    badge.wait_for()
    resolved = backend.http.get(f"/api/v1/models/{model['strategy']}/{model['name']}/versions/browser-pick")
    assert resolved.json()["version"] == model["version"]


def test_deleting_a_version_asks_first_and_removes_it(page: Any, backend: Backend) -> None:
    op_id = backend.start_training(epochs=2)
    model = backend.wait_status(op_id, {"completed"})["result"]["model"]
    page.goto("/#/models")
    entry = page.locator(f'[data-model="{model["strategy"]}/{model["name"]}"]')
    entry.locator("summary").click()
    row = entry.locator(f'tr[data-version="{model["version"]}"]')
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete version", exact=True).click()
    row.wait_for(state="detached")
    versions = backend.http.get(f"/api/v1/models/{model['strategy']}/{model['name']}").json()["versions"]
    assert model["version"] not in [v["version"] for v in versions]


def test_compare_overlays_the_loss_curves_of_two_runs(page: Any, finished_runs: list[str]) -> None:
    page.goto("/#/compare")
    for op_id in finished_runs:
        page.locator(f'#compare-picker [data-op="{op_id}"] input').check()
    page.locator("#compare-table tbody tr").nth(1).wait_for()
    lines = page.locator("#compare-chart .series")
    assert lines.count() == 4  # train and validation loss of each run
    counts = sorted(int(lines.nth(i).get_attribute("data-count")) for i in range(4))
    assert counts == [3, 3, 5, 5]
    assert set(
        page.locator("#compare-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.op)")
    ) == set(finished_runs)
    assert ",".join(finished_runs) in page.url or ",".join(reversed(finished_runs)) in page.url


def test_system_page_shows_device_modes_and_queue(page: Any) -> None:
    page.goto("/#/system")
    assert page.locator("#card-device .value").inner_text() == "cpu"
    page.locator("#modes-table tbody tr").nth(2).wait_for()
    assert page.locator("#card-queue .value").inner_text().isdigit()
    default = page.locator("#default-mode, #default-mode-select")
    assert default.count() == 1
    # No MODELYARD_RAY_ADDRESS here: the Ray panel says what to set, and the ray mode is unavailable.
    page.locator("#ray-none").wait_for()
    assert "MODELYARD_RAY_ADDRESS" in page.locator("#ray-none").inner_text()
    ray_name = page.locator("strong", has_text=re.compile(r"^ray$"))
    ray_row = page.locator("#modes-table tbody tr").filter(has=ray_name)
    assert "unavailable" in ray_row.inner_text()


def test_default_execution_mode_is_changed_from_the_system_page(page: Any, backend: Backend) -> None:
    page.goto("/#/system")
    page.locator("#modes-table tbody tr").first.wait_for()
    assert page.locator("#default-mode-select").count() == 1, "the system page has no default-mode selector"
    page.get_by_label("Default execution mode").select_option("auto")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Default execution mode is now auto.").wait_for()
    try:
        assert backend.http.get("/api/v1/system").json()["default_execution_mode"] == "auto"
    finally:
        backend.http.put("/api/v1/system/execution-mode", json={"mode": "local"})


def test_keyboard_alone_opens_the_wizard_and_picks_a_dataset(page: Any) -> None:
    page.goto("/#/trainings")
    page.locator("#trainings-table").wait_for()
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.nav") == "new":
            break
    page.keyboard.press("Enter")
    page.wait_for_selector('.steps li[aria-current="step"]')
    page.locator('[data-dataset="EURUSD_1h"]').wait_for()
    page.locator('[data-dataset="AAPL_1d"] input').focus()
    page.keyboard.press("Space")
    assert page.locator('[data-dataset="AAPL_1d"] input').is_checked()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_narrow_window_keeps_the_page_within_its_width(page: Any, finished_runs: list[str]) -> None:
    page.set_viewport_size({"width": 420, "height": 800})
    for route in ("#/trainings", "#/new", f"#/trainings/{finished_runs[0]}", "#/compare"):
        page.goto(f"/{route}")
        page.locator("main h1").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), route
    assert page.get_by_role("link", name="Models").is_visible()


def screenshot(page: Any, folder: Path, name: str) -> float:
    png = page.screenshot(path=str(folder / f"{name}.png"))
    return float(page.evaluate(PIXEL_SPREAD_JS, base64.b64encode(png).decode()))


def test_screenshots_of_every_page_are_not_blank(
    page: Any, finished_runs: list[str], screenshots_dir: Path
) -> None:
    waits = {
        "trainings": ("#/trainings", f'tr[data-op="{finished_runs[1]}"] [data-status="completed"]'),
        "training": (f"#/trainings/{finished_runs[1]}", "#importance .bar-row"),
        "wizard": ("#/new", '[data-dataset="EURUSD_1h"]'),
        "models": ("#/models", '[data-model="trend_momentum/EURUSD_1h"]'),
        "compare": (f"#/compare?ids={','.join(finished_runs)}", "#compare-table tbody tr"),
        "system": ("#/system", "#modes-table tbody tr"),
    }
    spreads = {}
    for name, (route, ready) in waits.items():
        page.goto(f"/{route}")
        page.locator(ready).first.wait_for()
        if name == "models":
            page.locator('[data-model="trend_momentum/EURUSD_1h"] summary').click()
            page.locator(
                '[data-model="trend_momentum/EURUSD_1h"] tr.latest, [data-model] .badge.latest'
            ).first.wait_for()
        spreads[name] = screenshot(page, screenshots_dir, f"{name}_1280x800")
        if name == "training":  # the outcome panels sit below the fold
            page.screenshot(path=str(screenshots_dir / "training_full_page.png"), full_page=True)
    blank = {name: spread for name, spread in spreads.items() if spread < MIN_PIXEL_SPREAD}
    assert not blank, f"blank-looking screenshots: {blank}"
    assert all((screenshots_dir / f"{name}_1280x800.png").stat().st_size > 20_000 for name in waits)
