"""Reading the uPlot line charts: hover values in the legend, drag to zoom, double-click to reset,
live re-renders that keep the canvas and the zoom, and no chart left alive after its page is gone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend
from tests.browser.test_dashboard_pages import MIN_PIXEL_SPREAD, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOADED_MACHINE_TIMEOUT_MS = 150_000
LIVE_CHARTS_JS = "async () => (await import('/dashboard/js/charts.js')).liveCharts()"


def wait_live_charts(page: Any, expected: int, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while (live := page.evaluate(LIVE_CHARTS_JS)) != expected:
        assert time.monotonic() < deadline, f"{live} uPlot charts alive, expected {expected}"
        time.sleep(0.05)


def js_number(value: float) -> str:
    """What the dashboard's fmtNumber(value, 4) shows for a loss-sized float."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def x_range(page: Any, chart: str) -> tuple[float, float]:
    """The chart's x range, read in one step once the figure has one (it is unset while the page
    redraws the figure, which live refreshes do at any moment)."""
    handle = page.wait_for_function(
        """(chart) => {
            const figure = document.querySelector(chart + " figure.chart-figure");
            const low = figure?.dataset.xMin, high = figure?.dataset.xMax;
            return low !== undefined && high !== undefined ? [Number(low), Number(high)] : null;
        }""",
        arg=chart,
    )
    low, high = handle.json_value()
    return float(low), float(high)


def open_drawn_chart(page: Any, op_id: str, chart: str = "#loss-chart") -> Any:
    """The training page with ``chart`` drawn; returns the chart's drawing area (uPlot's overlay)."""
    page.goto(f"/#/trainings/{op_id}")
    over = page.locator(f"{chart} .u-over")
    over.wait_for(state="visible")
    page.wait_for_function(f"() => document.querySelector('{chart} figure')?.dataset.xMax !== undefined")
    return over


def drag(page: Any, over: Any, start: float, end: float) -> None:
    """Presses at ``start`` and releases at ``end`` (shares of the plot's width), mid height."""
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    page.mouse.up()


def test_hovering_the_loss_chart_shows_each_series_value_at_that_epoch_in_the_legend(
    page: Any, backend: Backend, finished_runs: list[str], screenshots_dir: Path
) -> None:
    op_id = finished_runs[1]  # five epochs
    history = backend.http.get(f"/api/v1/operations/{op_id}/metrics").json()["history"]
    over = open_drawn_chart(page, op_id)
    train = page.locator('#loss-chart .series[data-series="train loss"] .series-value')
    validation = page.locator('#loss-chart .series[data-series="validation loss"] .series-value')
    assert train.text_content() == ""

    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)  # nearest x: the last epoch
    page.locator("#loss-chart .legend-x").filter(has_text="epoch").wait_for()
    last = history[-1]
    assert page.locator("#loss-chart .legend-x").text_content() == f"epoch {last['epoch']}"
    assert train.text_content() == js_number(last["train_loss"])
    assert validation.text_content() == js_number(last["val_loss"])
    assert screenshot(page, screenshots_dir, "training_chart_hover_1280x800") >= MIN_PIXEL_SPREAD

    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)  # the first epoch
    page.locator("#loss-chart .legend-x").filter(has_text=f"epoch {history[0]['epoch']}").wait_for()
    assert train.text_content() == js_number(history[0]["train_loss"])

    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] + 200)  # off the chart
    page.wait_for_function("() => document.querySelector('#loss-chart .series-value').textContent === ''")


def test_dragging_across_a_chart_zooms_its_x_range_and_a_double_click_restores_it(
    page: Any, finished_runs: list[str], screenshots_dir: Path
) -> None:
    over = open_drawn_chart(page, finished_runs[1], "#lr-chart")
    full = x_range(page, "#lr-chart")
    assert full == (1.0, 5.0)

    drag(page, over, 0.2, 0.7)
    # A zoomed range, read only once it is there: the figure is redrawn (and its range briefly unset) as
    # the page refreshes, so "not 1" alone also holds for a figure between two draws.
    page.wait_for_function(
        "() => { const v = document.querySelector('#lr-chart figure')?.dataset.xMin;"
        " return v !== undefined && v !== '1'; }"
    )
    zoomed = x_range(page, "#lr-chart")
    assert full[0] < zoomed[0] < zoomed[1] < full[1]
    assert screenshot(page, screenshots_dir, "training_chart_zoomed_1280x800") >= MIN_PIXEL_SPREAD

    over.dblclick()
    page.wait_for_function("() => document.querySelector('#lr-chart figure').dataset.xMin === '1'")
    assert x_range(page, "#lr-chart") == full


def test_a_live_chart_keeps_its_canvas_and_its_zoom_while_epochs_arrive(
    page: Any, endless_training: str
) -> None:
    page.goto(f"/#/trainings/{endless_training}")
    page.wait_for_function(
        """() => Number(document.querySelector('#loss-chart [data-series="train loss"]')?.dataset.count) >= 4""",
        timeout=LOADED_MACHINE_TIMEOUT_MS,
    )
    over = page.locator("#loss-chart .u-over")
    count = int(page.locator('#loss-chart [data-series="train loss"]').get_attribute("data-count"))
    page.evaluate("() => { document.querySelector('#loss-chart canvas').dataset.first = 'yes'; }")
    drag(page, over, 0.3, 0.8)
    page.wait_for_function(
        "([n]) => { const f = document.querySelector('#loss-chart figure'); return Number(f.dataset.xMax) < n; }",
        arg=[count],
    )
    zoomed = x_range(page, "#loss-chart")

    page.wait_for_function(
        f"""() => Number(document.querySelector('#loss-chart [data-series="train loss"]')?.dataset.count) >= {count + 2}""",
        timeout=LOADED_MACHINE_TIMEOUT_MS,
    )
    # Rendered again at least twice since: the same canvas (setData, no rebuild) and the same range.
    assert page.locator("#loss-chart canvas").get_attribute("data-first") == "yes"
    assert x_range(page, "#loss-chart") == zoomed
    assert page.evaluate(LIVE_CHARTS_JS) == 2  # loss and learning rate, nothing left behind

    over.dblclick()
    page.wait_for_function(
        "([n]) => Number(document.querySelector('#loss-chart figure').dataset.xMax) > n", arg=[zoomed[1]]
    )


def test_leaving_a_training_page_destroys_its_charts(page: Any, finished_runs: list[str]) -> None:
    open_drawn_chart(page, finished_runs[0])
    page.locator("#lr-chart .u-over").wait_for(state="visible")
    wait_live_charts(page, 2)
    page.goto("/#/models")
    page.locator("main h1").wait_for()
    wait_live_charts(page, 0)


def test_a_chart_follows_the_width_of_its_panel(page: Any, finished_runs: list[str]) -> None:
    open_drawn_chart(page, finished_runs[0])
    wide = page.wait_for_function(
        "() => document.querySelector('#loss-chart canvas')?.getBoundingClientRect().width || null"
    ).json_value()
    page.set_viewport_size({"width": 1000, "height": 800})  # still two panels a row
    # Both widths read in one step (a live refresh may swap the figure between two separate reads);
    # a canvas that never narrows to its panel's width fails here on the wait's deadline.
    handle = page.wait_for_function(
        """(wide) => {
            const canvas = document.querySelector('#loss-chart canvas');
            const plot = canvas?.closest('.chart-plot');
            if (!plot) return null;
            const drawn = canvas.getBoundingClientRect().width, panel = plot.getBoundingClientRect().width;
            return drawn < wide && Math.abs(drawn - panel) <= 1 ? [drawn, panel] : null;
        }""",
        arg=wide,
    )
    drawn, panel = handle.json_value()
    assert 0 < drawn < wide
    assert abs(drawn - panel) <= 1
