"""The trainings table, the new-training wizard and the training page, in Chromium against a real backend."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, PageProblems
from tests.browser.test_dashboard_pages import MIN_PIXEL_SPREAD, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The machine is shared: trainings may crawl while others run their suites; waits are generous deadlines.
LOADED_MACHINE_TIMEOUT_MS = 150_000
BAD_YAML = "name: broken\nindicators: not-a-list\n"


def wizard_to_step_2(page: Any, dataset: str = "EURUSD_1h") -> None:
    page.goto("/#/new")
    page.locator(f'[data-dataset="{dataset}"] input').check()
    page.click("#wizard-next")
    page.wait_for_selector('.steps li[aria-current="step"]:has-text("Configuration")')


def field_error(page: Any, label: str) -> str:
    """The error text wired to a field through its aria-describedby."""
    error_id = page.get_by_label(label).get_attribute("aria-describedby").split()[-1]
    return str(page.locator(f"#{error_id}").inner_text())


def test_wizard_starts_a_training_that_completes_with_a_growing_loss_plot(
    page: Any, backend: Backend
) -> None:
    wizard_to_step_2(page)
    page.locator('[data-strategy="trend_momentum"] input').check()
    page.get_by_role("button", name="View trend_momentum").click()
    assert "name: trend_momentum" in page.locator("#strategy-source").inner_text()
    page.click("#wizard-next")
    page.get_by_label("Epochs").fill("12")
    # Small batches make each epoch take a visible moment, so the plot is seen growing even on a fast machine.
    page.get_by_label("Batch size").fill("4")
    page.get_by_label("Learning rate").fill("0.002")
    page.get_by_label("Execution mode").select_option("local")
    page.click("#wizard-next")
    summary = page.locator("#wizard-summary").inner_text()
    assert "EURUSD · 1h" in summary
    assert "trend_momentum" in summary
    assert "12" in summary

    page.click("#wizard-next")  # Start training
    page.wait_for_url(re.compile(r"#/trainings/op_"))
    op_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector('#progress-panel [data-status="completed"]', timeout=LOADED_MACHINE_TIMEOUT_MS)
    page.wait_for_selector("#model-download")

    history = backend.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    counts: list[int] = page.evaluate("window.__lossCounts")
    final = page.locator('#loss-chart [data-series="train loss"]').get_attribute("data-count")
    assert final == str(len(history))
    assert len(counts) >= 2, f"the plot did not grow: {counts}"
    assert counts == sorted(counts), f"the plot shrank: {counts}"
    assert page.locator("#confusion table td").count() == 9
    assert page.locator("#importance .bar-row").count() > 0
    href = page.locator("#model-download").get_attribute("href")
    assert href is not None
    assert href.endswith("/download")
    assert page.locator("#log-view .line").count() > 0


def test_stop_asks_first_and_cancels_a_running_training(
    page: Any, backend: Backend, endless_training: str, screenshots_dir: Path
) -> None:
    op_id = endless_training
    page.goto(f"/#/trainings/{op_id}")
    page.wait_for_function(
        """() => Number(document.querySelector('#loss-chart [data-series="train loss"]')?.dataset.count) >= 3""",
        timeout=LOADED_MACHINE_TIMEOUT_MS,
    )
    assert screenshot(page, screenshots_dir, "training_running_1280x800") >= MIN_PIXEL_SPREAD
    page.goto("/#/trainings")
    row = page.locator(f'tr[data-op="{op_id}"]')
    row.locator('[data-status="running"]').wait_for()
    assert screenshot(page, screenshots_dir, "trainings_running_1280x800") >= MIN_PIXEL_SPREAD

    row.locator('[data-action="stop"]').click()
    page.get_by_role("button", name="Keep it", exact=True).click()
    assert backend.http.get(f"/api/v1/operations/{op_id}").json()["status"] == "running"

    row.locator('[data-action="stop"]').click()
    page.get_by_role("button", name="Stop training", exact=True).click()
    row.locator('[data-status="cancelled"]').wait_for(timeout=LOADED_MACHINE_TIMEOUT_MS)
    assert backend.wait_status(op_id, {"cancelled"}, 5)["status"] == "cancelled"


def test_retry_runs_a_cancelled_training_again_as_a_second_attempt(
    page: Any, backend: Backend, endless_training: str
) -> None:
    op_id = endless_training
    backend.http.post(f"/api/v1/operations/{op_id}/cancel")
    backend.wait_status(op_id, {"cancelled"})
    page.goto(f"/#/trainings/{op_id}")

    page.locator('[data-action="retry"]').click()

    page.get_by_text(re.compile(r"attempt 2 · ")).wait_for(timeout=LOADED_MACHINE_TIMEOUT_MS)
    assert backend.wait_status(op_id, {"running"})["status"] == "running"
    attempts = backend.http.get(f"/api/v1/operations/{op_id}").json()["attempt_history"]
    assert [(a["number"], a["trigger"]) for a in attempts] == [(1, None), (2, "manual")]
    assert page.locator('[data-action="retry"]').count() == 0


def test_status_filter_shows_only_matching_trainings(
    page: Any, backend: Backend, finished_runs: list[str]
) -> None:
    page.goto("/#/trainings")
    page.locator(f'tr[data-op="{finished_runs[0]}"]').wait_for()
    page.select_option("#status-filter", "failed")
    page.wait_for_url(re.compile(r"status=failed"))
    page.wait_for_selector("#trainings-table td.empty")
    assert page.locator("#trainings-table tr[data-op]").count() == 0


def test_bad_yaml_shows_its_error_and_blocks_the_next_step(page: Any) -> None:
    wizard_to_step_2(page)
    page.get_by_label("Paste YAML").check()
    page.locator("#strategy-yaml").fill(BAD_YAML)
    error = page.locator("#yaml-status .notice.bad")
    error.wait_for()
    assert "indicators" in error.inner_text()
    assert page.locator("#strategy-yaml").get_attribute("aria-invalid") == "true"
    page.click("#wizard-next")
    assert "Fix the YAML" in page.locator("#wizard-error").inner_text()

    good = page.request.get("/api/v1/strategies/mean_reversion/source").json()["yaml"]
    page.locator("#strategy-yaml").fill(good)
    page.locator("#yaml-status .notice.ok").wait_for()
    page.click("#wizard-next")
    page.wait_for_selector('.steps li[aria-current="step"]:has-text("Parameters")')


def test_bad_parameters_are_flagged_inline(page: Any) -> None:
    wizard_to_step_2(page)
    page.locator('[data-strategy="trend_momentum"] input').check()
    page.click("#wizard-next")
    page.get_by_label("Epochs").fill("0")
    page.get_by_label("Learning rate").fill("-1")
    assert "1 to 10000" in field_error(page, "Epochs")
    assert "above 0" in field_error(page, "Learning rate")
    assert page.get_by_label("Learning rate").get_attribute("aria-invalid") == "true"
    page.click("#wizard-next")
    assert "Fix the highlighted" in page.locator("#wizard-error").inner_text()


def test_bad_csv_upload_shows_why_and_a_good_one_is_selected(
    page: Any, backend: Backend, problems: PageProblems
) -> None:
    problems.allow("status of 422")  # the rejected upload itself
    page.goto("/#/new")
    page.get_by_label("Symbol").fill("BADSYM")
    page.get_by_label("Timeframe").fill("1h")
    page.get_by_label("CSV file").set_input_files(
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"timestamp,open,high\n1,2,3\n"}
    )
    page.get_by_role("button", name="Upload CSV").click()
    error = page.locator("#upload-form .field-error:not(:empty)")
    error.wait_for()
    assert "lacks column" in error.inner_text()
    assert "close" in error.inner_text()

    good = backend.http.get("/api/v1/data/EURUSD/1h/download").content
    page.get_by_label("Symbol").fill("UPL")
    page.get_by_label("CSV file").set_input_files({"name": "upl.csv", "mimeType": "text/csv", "buffer": good})
    page.get_by_role("button", name="Upload CSV").click()
    page.locator('[data-dataset="UPL_1h"] input:checked').wait_for()
    assert page.locator("#upload-form .field-error:not(:empty)").count() == 0


def test_trainings_table_updates_live_without_reload(page: Any, backend: Backend) -> None:
    page.goto("/#/trainings")
    page.locator("#trainings-table").wait_for()
    page.evaluate("window.__marker = 'same page'")
    op_id = backend.start_training(epochs=3)
    row = page.locator(f'tr[data-op="{op_id}"]')
    row.locator('[data-status="completed"]').wait_for(timeout=LOADED_MACHINE_TIMEOUT_MS)
    deadline = time.monotonic() + 10
    while "100%" not in row.locator(".progress").inner_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "100%" in row.locator(".progress").inner_text()
    assert page.evaluate("window.__marker") == "same page"
