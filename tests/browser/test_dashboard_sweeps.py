"""The sweeps page in Chromium: a finished sweep's trials sorted by objective, its charts and best trial; a
refused trial's reason in its row; the wizard's "Start a sweep" opening the sweep form with the request
built so far."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import Backend

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def finished_sweep(backend: Backend, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "base": {
            "strategy": "trend_momentum",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "execution_mode": "local",
            "overrides": {"epochs": 1},
        },
        "space": {"overrides.learning_rate": {"type": "float", "low": 0.0005, "high": 0.05, "log": True}},
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "n_trials": 3,
        "parallelism": 1,
        "pruner": "none",
        **changes,
    }
    response = backend.http.post("/api/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep_id = response.json()["sweep_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        view: dict[str, Any] = backend.http.get(f"/api/v1/sweeps/{sweep_id}").json()
        if view["status"] in ("completed", "failed", "cancelled"):
            assert view["status"] == "completed", view
            return view
        time.sleep(0.2)
    raise AssertionError(f"sweep {sweep_id} did not finish")


def test_sweep_page_sorts_trials_by_objective_and_draws_its_charts(page: Any, backend: Backend) -> None:
    view = finished_sweep(backend)
    page.goto(f"/#/sweeps/{view['sweep_id']}")
    rows = page.locator("#trials-table tbody tr")
    rows.nth(2).wait_for()
    values = [
        float(v)
        for v in rows.locator("td[data-objective]").evaluate_all(
            "cells => cells.map(c => c.dataset.objective)"
        )
    ]
    assert values == sorted(values)  # best (lowest) first
    page.locator("#sort-objective").click()
    values = [
        float(v)
        for v in page.locator("#trials-table tbody td[data-objective]").evaluate_all(
            "cells => cells.map(c => c.dataset.objective)"
        )
    ]
    assert values == sorted(values, reverse=True)
    assert (
        page.locator('#objective-chart .series[data-series="objective"]').get_attribute("data-count") == "3"
    )
    assert (
        page.locator('#objective-chart .series[data-series="best so far"]').get_attribute("data-count") == "3"
    )
    assert (
        page.locator('#param-scatter .series[data-series="overrides.learning_rate"]').get_attribute(
            "data-count"
        )
        == "3"
    )
    link = page.locator("#best-trial a")
    assert link.get_attribute("href") == f"#/trainings/{view['best']['operation_id']}"
    assert f"sweep-{view['sweep_id']}-best" in page.locator("#best-trial").inner_text()
    page.goto("/#/sweeps")
    page.locator(f'#sweeps-table tr[data-sweep="{view["sweep_id"]}"]').wait_for()


def test_a_refused_trials_row_shows_why_its_training_could_not_start(page: Any, backend: Backend) -> None:
    # With period 5000 the EMA's output is ema_5000: the features naming ema_50_distance make that
    # trial's strategy invalid, refused when it starts (no operation); the other trial trains.
    path = "strategy.indicators.0.params.period"
    space = {path: {"type": "categorical", "choices": [50, 5000]}}
    view = finished_sweep(backend, space=space, sampler="grid", n_trials=2)
    refused = next(t for t in view["trials"] if t["params"] == {path: 5000})
    assert (refused["status"], refused["operation_id"]) == ("failed", "")
    page.goto(f"/#/sweeps/{view['sweep_id']}")
    row = page.locator(f'#trials-table tbody tr[data-trial="{refused["number"]}"]')
    cell = row.locator(".trial-error")
    cell.wait_for()
    assert cell.inner_text() == refused["error"]
    assert cell.inner_text().startswith("its training could not start: ")
    assert "ema_50_distance" in cell.inner_text()
    assert row.locator(".badge").inner_text() == "failed"
    assert row.locator("a").count() == 0  # no operation to link to
    trained = page.locator(f'#trials-table tbody tr[data-trial="{view["best"]["number"]}"]')
    assert trained.locator(".trial-error").count() == 0
    assert trained.locator("a").get_attribute("href") == f"#/trainings/{view['best']['operation_id']}"


def test_the_wizard_starts_a_sweep_from_the_request_built_so_far(page: Any, backend: Backend) -> None:
    page.goto("/#/new")
    page.locator("#wizard-sweep").click()
    page.locator("#sweep-body").wait_for()
    text = page.locator("#sweep-body").input_value()
    assert '"base"' in text
    assert '"space"' in text
