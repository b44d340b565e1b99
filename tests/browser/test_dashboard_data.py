"""The Data page (list, preview of columns, dtypes, rows and missing values, a refused upload) and the
wizard's tabular flow: upload a Parquet table, pick the target from its columns, train."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.browser.conftest import Backend, PageProblems

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHURN = "age,city,spend,churned\n31,Oslo,10.5,no\n45,Rome,,yes\n22,,1.0,yes\n60,Lima,12.75,no\n38,,3.5,no\n"


def test_the_data_page_lists_both_kinds_and_previews_a_tables_columns(page: Any, backend: Backend) -> None:
    stored = backend.http.post(
        "/api/v1/data", files={"file": ("churn_page.csv", CHURN.encode())}, data={"kind": "table"}
    )
    assert stored.status_code == 201, stored.text
    page.goto("/#/data")
    page.locator('#data-table tr[data-path="churn_page.csv"]').wait_for()
    assert page.locator('#data-table tr[data-path="EURUSD_1h.csv"] .badge').inner_text() == "candles"
    assert page.locator('#data-table tr[data-path="churn_page.csv"] .badge').inner_text() == "table"
    page.locator('#data-table tr[data-path="churn_page.csv"] a').click()
    page.locator("#preview-columns").wait_for()
    assert page.url.endswith("#/data/churn_page.csv")
    rows = page.locator("#preview-columns tbody tr")
    cells = [[cell.strip() for cell in rows.nth(i).inner_text().split("\t")] for i in range(rows.count())]
    assert cells == [
        ["age", "int64", "none"],
        ["city", "string", "2 (40.0 %)"],
        ["spend", "float64", "1 (20.0 %)"],
        ["churned", "string", "none"],
    ]
    assert "5 rows · 4 columns · csv" in page.locator("#preview-columns caption").inner_text()
    assert page.locator("#preview-rows tbody tr").count() == 5
    assert page.locator("#preview-rows tbody tr").nth(1).locator("td").nth(2).inner_text() == "—"


def test_a_table_without_a_header_is_refused_on_the_data_page_with_the_fix(
    page: Any, backend: Backend, problems: PageProblems, tmp_path: Path
) -> None:
    problems.allow("422")  # the browser logs the refused upload's status
    (tmp_path / "numbers.csv").write_text("1,2,3\n4,5,6\n")
    page.goto("/#/data")
    page.locator("#table-upload-form").wait_for()
    page.set_input_files('#table-upload-form input[type="file"]', str(tmp_path / "numbers.csv"))
    page.locator("#table-upload-form button[type=submit]").click()
    error = page.locator("#table-upload-form .field-error").first
    error.wait_for()
    page.wait_for_function("document.querySelector('#table-upload-form .field-error').textContent.length > 0")
    assert "has no header" in error.inner_text()
    assert "add a first line naming each column" in error.inner_text()
    listed = [d["path"] for d in backend.http.get("/api/v1/data").json()["items"]]
    assert "numbers.csv" not in listed


def test_the_wizard_uploads_a_parquet_table_picks_its_target_and_trains(
    page: Any, backend: Backend, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    frame = pd.DataFrame(
        {"x": x, "noise": rng.normal(size=120), "price": 3.0 * x + 0.1 * rng.normal(size=120)}
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    (tmp_path / "prices.parquet").write_bytes(buffer.getvalue())

    page.goto("/#/new")
    page.locator('[data-workload="tabular"] input').check()
    page.locator("#wizard-table-upload").wait_for()
    page.set_input_files('#wizard-table-upload input[type="file"]', str(tmp_path / "prices.parquet"))
    page.locator("#wizard-table-upload button[type=submit]").click()
    page.locator("#target-select").wait_for()
    assert page.locator('[data-table="prices.parquet"] input').is_checked()
    options = page.locator("#target-select option").all_inner_texts()
    assert options == ["Pick the target column", "x (float64)", "noise (float64)", "price (float64)"]
    page.locator("#wizard-next").click()
    assert "Pick the target column" in page.locator("#wizard-error").inner_text()

    page.locator("#target-select").select_option("price")
    assert page.locator("#task-select").input_value() == "regression"
    page.locator("#wizard-next").click()
    page.locator('input[name="epochs"]').fill("5")
    page.locator("#wizard-next").click()
    body = json.loads(page.locator("#wizard-request").text_content())
    assert body["workload"] == "tabular"
    assert body["tabular"] == {"dataset": "prices.parquet", "target": "price", "task": "regression"}
    page.locator("#wizard-next").click()
    page.wait_for_url("**/#/trainings/*")
    op_id = page.url.rsplit("/", 1)[-1]
    op = backend.wait_status(op_id, {"completed", "failed", "cancelled"})
    assert op["status"] == "completed", op
