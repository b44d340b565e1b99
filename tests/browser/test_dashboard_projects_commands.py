"""Projects, tags and the command workload against the real backend: the header's project switcher and
the tag filter narrow the trainings table; the wizard starts a command run whose step chart grows."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import Backend

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOADED_MACHINE_TIMEOUT_MS = 90_000
# Enough steps that the run logs many rows over a visible moment even on a fast machine.
TOY_STEPS = "2000"


def rows_shown(page: Any) -> set[str]:
    return set(
        page.locator("#trainings-table tr[data-op]").evaluate_all("rows => rows.map(r => r.dataset.op)")
    )


def wait_rows(page: Any, expected: set[str], among: set[str]) -> None:
    """Until the table shows exactly ``expected`` out of ``among`` (other tests' runs may be listed too)."""
    page.wait_for_function(
        """([want, all]) => {
          const shown = [...document.querySelectorAll('#trainings-table tr[data-op]')].map((r) => r.dataset.op);
          return all.every((id) => shown.includes(id) === want.includes(id));
        }""",
        arg=[sorted(expected), sorted(among)],
    )


@pytest.fixture(scope="module")
def labelled_runs(backend: Backend) -> dict[str, str]:
    """Two short trainings in two projects with different tags."""
    ids = {
        "alpha": backend.start_training(
            {"project": "alpha", "name": "alpha-run", "tags": ["fast", "shared"]}, epochs=2
        ),
        "beta": backend.start_training({"project": "beta", "tags": ["slow", "shared"]}, epochs=2),
    }
    for op_id in ids.values():
        backend.wait_status(op_id, {"completed", "failed", "cancelled"})
    return ids


def test_project_switcher_and_tag_filter_narrow_the_trainings_table(
    page: Any, labelled_runs: dict[str, str]
) -> None:
    both = set(labelled_runs.values())
    page.goto("/#/trainings")
    wait_rows(page, both, both)
    alpha_row = page.locator(f'tr[data-op="{labelled_runs["alpha"]}"]')
    assert "alpha-run" in alpha_row.locator("[data-name]").inner_text()
    assert alpha_row.locator('[data-tag="fast"]').count() == 1

    switcher = page.get_by_label("Show project")
    page.locator('#project-switcher option[value="alpha"]').wait_for(state="attached")
    assert "(1)" in page.locator('#project-switcher option[value="alpha"]').inner_text()
    switcher.select_option("alpha")
    wait_rows(page, {labelled_runs["alpha"]}, both)
    assert "project=alpha" in page.url
    page.reload()  # the choice survives a reload
    wait_rows(page, {labelled_runs["alpha"]}, both)
    assert page.locator("#project-switcher").input_value() == "alpha"

    switcher.select_option("")
    wait_rows(page, both, both)
    page.locator("#tag-filter").fill("slow")
    page.locator("#tag-filter").press("Enter")
    wait_rows(page, {labelled_runs["beta"]}, both)
    assert "tag=slow" in page.url

    page.locator("#tag-filter").fill("")
    page.locator("#tag-filter").press("Enter")
    wait_rows(page, both, both)
    alpha_row.locator('[data-tag="fast"]').click()  # a tag chip filters by its tag
    wait_rows(page, {labelled_runs["alpha"]}, both)
    assert page.locator("#tag-filter").input_value() == "fast"


def test_workload_filter_and_active_only_narrow_the_table(page: Any, labelled_runs: dict[str, str]) -> None:
    both = set(labelled_runs.values())
    page.goto("/#/trainings")
    wait_rows(page, both, both)
    page.select_option("#workload-filter", "command")
    wait_rows(page, set(), both)
    page.select_option("#workload-filter", "strategy")
    wait_rows(page, both, both)
    page.get_by_label("Active only").check()
    wait_rows(page, set(), both)
    assert "active=1" in page.url


def test_wizard_starts_a_command_run_whose_step_chart_grows_until_completed(
    page: Any, backend: Backend, finished_runs: list[str]
) -> None:
    toy = backend.http.get("/api/v1/commands/toy")
    assert toy.status_code == 200, f"the backend has no command 'toy' yet: {toy.status_code} {toy.text[:200]}"
    page.goto("/#/new")
    page.locator('[data-command="toy"] input').check()
    page.click("#wizard-next")
    page.wait_for_selector('.steps li[aria-current="step"]:has-text("Dataset")')
    if toy.json()["dataset"] == "required":
        page.locator("#command-data [data-path] input").first.check()
    page.click("#wizard-next")
    page.locator('#command-params input[name="steps"]').fill(TOY_STEPS)
    page.get_by_label("Execution mode").select_option("local")
    page.get_by_label("Project", exact=True).fill("commands")
    page.get_by_label("Name (optional)").fill("toy-browser")
    page.get_by_label("Tags (optional)").fill("browser")
    page.click("#wizard-next")
    sent = json.loads(page.locator("#wizard-request").inner_text())
    assert sent["workload"] == "command"
    assert sent["command"]["name"] == "toy"
    assert sent["command"]["params"]["steps"] == int(TOY_STEPS)
    assert (sent["project"], sent["name"], sent["tags"]) == ("commands", "toy-browser", ["browser"])

    page.click("#wizard-next")  # Start training
    page.wait_for_url(re.compile(r"#/trainings/op_"))
    op_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector('#progress-panel [data-status="completed"]', timeout=LOADED_MACHINE_TIMEOUT_MS)
    page.wait_for_selector("#model-panel")

    history = backend.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    with_loss = [row for row in history if isinstance(row.get("loss"), int | float)]
    page.wait_for_function(
        f"""() => document.querySelector('#loss-chart [data-series="train loss"]')?.dataset.count === "{len(with_loss)}" """
    )
    counts: list[int] = page.evaluate("window.__lossCounts")
    assert len(set(counts)) >= 2, f"the plot did not grow: {counts}"
    assert counts == sorted(counts), f"the plot shrank: {counts}"
    assert page.locator("#loss-chart .axis-title").text_content() == "step"
    assert page.locator("#lr-chart .series").count() == 1
    assert page.locator("#command-phases li").count() == 4
    assert page.locator("#log-view .line").count() > 0
    output = backend.http.get(page.locator("#output-link").get_attribute("href") or "")
    assert output.status_code == 200
    assert f"step: {TOY_STEPS} loss: " in output.text
    op = backend.http.get(f"/api/v1/operations/{op_id}").json()
    assert (op["workload"], op["project"], op["name"], op["tags"]) == (
        "command",
        "commands",
        "toy-browser",
        ["browser"],
    )

    # Compare overlays it by step beside an epoch-keyed run.
    page.goto(f"/#/compare?ids={op_id},{finished_runs[0]}")
    page.locator("#compare-table tbody tr").nth(1).wait_for()
    train = page.locator(f'#compare-chart .series[data-series$="({op_id[3:11]}) · train"]')
    assert train.get_attribute("data-count") == str(len(with_loss))
    assert page.locator("#compare-chart .axis-title").text_content() == "step / epoch"
