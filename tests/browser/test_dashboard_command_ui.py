"""The command workload's pages against scripted API answers (Playwright routes), so the form generated
from param specs, the inline 422 and the step-keyed charts are checked whatever the backend offers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import PageProblems

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC: dict[str, Any] = {
    "name": "fake",
    "description": "A scripted command.",
    "params": {
        "steps": {
            "type": "int",
            "default": 300,
            "min": 1,
            "max": 100000,
            "choices": None,
            "description": "steps",
        },
        "lr": {"type": "float", "default": 0.01, "min": 0, "max": 1, "choices": None, "description": "rate"},
        "optimizer": {"type": "choice", "default": "adam", "choices": ["adam", "sgd"], "description": ""},
        "causal": {"type": "bool", "default": False, "description": "causal conv"},
        "label": {"type": "str", "default": "run", "description": "free text"},
    },
    "dataset": "required",
    "metrics": ["loss", "lr", "val_loss"],
    "progress": {"metric": "step", "total_param": "steps", "total": None},
    "artifacts": ["*.pt"],
}
OP_ID = "op_fakecommand0001"
TOTAL_STEPS = 1000


def json_reply(route: Any, body: Any, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def with_commands(page: Any) -> None:
    """The server lists SPEC as its only command (and its OpenAPI says so)."""

    def schema(route: Any) -> None:
        doc = route.fetch().json()
        doc["paths"]["/api/v1/commands"] = {"get": {}}
        json_reply(route, doc)

    page.route("**/openapi.json", schema)
    page.route("**/api/v1/commands", lambda route: json_reply(route, {"items": [SPEC]}))


def test_param_form_follows_the_specs_and_the_servers_422_names_the_field(
    page: Any, problems: PageProblems
) -> None:
    problems.allow("status of 422")  # the scripted rejection
    with_commands(page)
    posted: list[dict[str, Any]] = []

    def trainings(route: Any) -> None:
        posted.append(route.request.post_data_json)
        message = "command.params.steps: must be at most 5000 on this server"
        error = {"code": "validation_error", "message": message, "details": {"field": "command.params.steps"}}
        json_reply(route, {"error": error}, 422)

    page.route("**/api/v1/trainings", trainings)
    page.goto("/#/new")
    page.locator('[data-command="fake"] input').check()
    assert page.locator('.steps li[aria-current="step"]').inner_text() == "Workload"
    page.click("#wizard-next")
    page.click("#wizard-next")  # the template requires data
    assert "needs data" in page.locator("#wizard-error").inner_text()
    page.locator(
        '#command-data [data-path="EURUSD_1h.csv"] input, #command-data [data-path$="EURUSD_1h.csv"] input'
    ).first.check()
    assert page.locator("#command-dataset").input_value().endswith("EURUSD_1h.csv")
    page.click("#wizard-next")

    steps = page.locator('#command-params input[name="steps"]')
    assert (steps.get_attribute("type"), steps.get_attribute("min"), steps.get_attribute("max")) == (
        "number",
        "1",
        "100000",
    )
    assert steps.input_value() == "300"
    assert page.locator('#command-params select[name="optimizer"] option').all_inner_texts() == [
        "adam",
        "sgd",
    ]
    assert page.locator('#command-params input[name="causal"]').get_attribute("type") == "checkbox"
    assert page.locator('#command-params input[name="label"]').input_value() == "run"
    steps.fill("0")
    assert "from 1 to 100000" in page.locator('[data-param="steps"] .field-error').inner_text()
    page.click("#wizard-next")
    assert "Fix the highlighted" in page.locator("#wizard-error").inner_text()

    steps.fill("9000")
    page.locator('#command-params input[name="causal"]').check()
    page.locator('#command-params select[name="optimizer"]').select_option("sgd")
    page.get_by_label("Project", exact=True).fill("Bad Project")
    page.click("#wizard-next")
    assert "lower-case" in page.locator("#wizard-project .field-error:not(:empty)").inner_text()
    page.get_by_label("Project", exact=True).fill("speech")
    page.get_by_label("Name (optional)").fill("fake-run.1")
    page.get_by_label("Tags (optional)").fill("smoke, #fast")
    page.click("#wizard-next")

    sent = json.loads(page.locator("#wizard-request").inner_text())
    assert sent["workload"] == "command"
    assert sent["command"]["name"] == "fake"
    assert sent["command"]["dataset"].endswith("EURUSD_1h.csv")
    assert sent["command"]["params"] == {
        "steps": 9000,
        "lr": 0.01,
        "optimizer": "sgd",
        "causal": True,
        "label": "run",
    }
    assert (sent["project"], sent["name"], sent["tags"]) == ("speech", "fake-run.1", ["smoke", "fast"])

    page.click("#wizard-next")  # Start training: the scripted 422
    page.locator('#wizard-error:has-text("at most 5000")').wait_for()
    assert len(posted) == 1
    assert posted[0]["command"] == sent["command"]
    page.locator('#wizard-error [data-action="fix"]').click()
    assert "at most 5000" in page.locator('[data-param="steps"] .field-error').inner_text()
    assert steps.get_attribute("aria-invalid") == "true"


def scripted_command_run(page: Any) -> dict[str, int]:
    """One running command operation whose history gains rows on every read until it completes."""
    calls = {"metrics": 0}

    def rows() -> list[dict[str, Any]]:
        count = min(2 * calls["metrics"], 8)
        out: list[dict[str, Any]] = []
        for i in range(1, count + 1):
            row: dict[str, Any] = {"step": i * 100, "loss": 1 / i, "lr": 0.01 / i}
            if i % 2 == 0:
                row["val_loss"] = 1.2 / i
            out.append(row)
        return out

    def op_view() -> dict[str, Any]:
        done = calls["metrics"] >= 4
        step = min(2 * calls["metrics"], 8) * 100
        progress = {
            "percentage": 100.0 if done else step / TOTAL_STEPS * 100,
            "phase": "storing" if done else "running",
            "message": f"step {step}/{TOTAL_STEPS}",
            "epoch": None,
            "total_epochs": None,
            "metrics": {"loss": 0.5},
        }
        return {
            "operation_id": OP_ID, "type": "training", "status": "completed" if done else "running",
            "execution_mode": "local", "device": "cpu", "progress": progress, "workload": "command",
            "project": "speech", "name": "fake-run", "tags": ["smoke"],
            "created_at": "2026-11-30T10:00:00Z", "started_at": "2026-11-30T10:00:01Z",
            "completed_at": "2026-11-30T10:01:00Z" if done else None, "result": None, "error": None,
        }  # fmt: skip

    def operation(route: Any) -> None:
        url = route.request.url
        if url.endswith("/metrics"):
            calls["metrics"] += 1
            json_reply(
                route,
                {"operation_id": OP_ID, "status": op_view()["status"], "history": rows(), "decisions": []},
            )
        elif "/events" in url:
            route.fulfill(
                status=200,
                content_type="text/event-stream",
                body=f"event: state\ndata: {json.dumps(op_view())}\n\n",
            )
        elif "/logs" in url:
            line = {"at": "2026-11-30T10:00:02Z", "level": "INFO", "message": "step 100 loss 0.5"}
            json_reply(
                route,
                {"lines": [line], "next_offset": 1} if "offset=0" in url else {"lines": [], "next_offset": 1},
            )
        elif url.endswith("/request"):
            command = {"name": "fake", "params": {"steps": TOTAL_STEPS}, "dataset": None}
            json_reply(
                route,
                {
                    "operation_id": OP_ID,
                    "workload": "command",
                    "symbols": [],
                    "timeframes": [],
                    "command": command,
                },
            )
        else:
            json_reply(route, op_view())

    page.route(f"**/api/v1/operations/{OP_ID}**", operation)
    return calls


def test_command_run_charts_loss_and_lr_per_step_growing_live(page: Any) -> None:
    scripted_command_run(page)
    page.goto(f"/#/trainings/{OP_ID}")
    page.wait_for_selector('#progress-panel [data-status="completed"]', timeout=30_000)
    page.wait_for_function(
        """() => document.querySelector('#loss-chart [data-series="train loss"]')?.dataset.count === "8" """
    )
    counts: list[int] = page.evaluate("window.__lossCounts")
    assert len(set(counts)) >= 2, f"the plot did not grow: {counts}"
    assert counts == sorted(counts), f"the plot shrank: {counts}"
    assert page.locator('#loss-chart [data-series="validation loss"]').get_attribute("data-count") == "4"
    assert page.locator('#lr-chart [data-series="learning rate"]').get_attribute("data-count") == "8"
    assert page.locator("#loss-chart .axis-title").text_content() == "step"
    assert page.locator("#command-phases li").all_inner_texts() == [
        "starting",
        "running",
        "collecting",
        "storing",
    ]
    assert "fake-run" in page.locator("main h1").inner_text()
    assert page.locator('.page-head [data-tag="smoke"]').count() == 1
    assert page.locator("#log-view .line").count() > 0


def test_arrow_keys_switch_the_workload_and_keep_the_focus_on_the_choice(page: Any) -> None:
    with_commands(page)
    page.goto("/#/new")
    page.locator('[data-dataset="EURUSD_1h"]').wait_for()
    page.locator('[data-command="fake"]').wait_for()
    page.locator('[data-workload="strategy"] input').focus()
    page.keyboard.press("ArrowDown")  # strategy -> tabular: the focus stays on the choices
    page.wait_for_function("document.activeElement?.value === 'tabular'")
    page.keyboard.press("ArrowDown")  # tabular -> the command
    page.wait_for_selector('.steps li[aria-current="step"]:has-text("Workload")')
    page.wait_for_function("document.activeElement?.value === 'command:fake'")
    assert page.locator('[data-dataset="EURUSD_1h"]').count() == 0
    page.keyboard.press("ArrowUp")
    page.wait_for_function("document.activeElement?.value === 'tabular'")
    page.keyboard.press("ArrowUp")
    page.locator('[data-dataset="EURUSD_1h"]').wait_for()
    page.wait_for_function("document.activeElement?.value === 'strategy'")
