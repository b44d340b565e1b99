"""``data sample|list`` and ``strategies list|validate`` on local folders."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke, Workspace

BAD_STRATEGY = """name: broken
indicators:
  - name: rsi
    params: {period: 14}
fuzzy_sets:
  rsi_14:
    low: {type: triangular, parameters: [0, 20]}
labels: {method: zigzag, threshold: 0.02}
"""


def test_data_sample_writes_the_requested_datasets_and_data_list_shows_them(
    invoke: Invoke, workspace: Workspace
) -> None:
    data = ["--data-dir", str(workspace.data)]
    sample = invoke(["data", "sample", *data, "--symbol", "EURUSD", "--symbol", "AAPL", "--timeframe", "1h",
                     "--rows", "300"])  # fmt: skip
    assert sample.exit_code == 0, sample.output
    assert sorted(p.name for p in workspace.data.iterdir()) == ["AAPL_1h.csv", "EURUSD_1h.csv"]
    assert "2 sample datasets" in sample.output

    listed = invoke(["data", "list", *data, "--json"])
    assert listed.exit_code == 0
    rows = {(d["symbol"], d["timeframe"]): d["rows"] for d in json.loads(listed.stdout)}
    assert rows == {("AAPL", "1h"): 300, ("EURUSD", "1h"): 300}

    table = invoke(["data", "list", *data])
    assert "EURUSD" in table.output
    assert "300" in table.output


def test_data_list_shows_tables_beside_candles_as_the_api_does(invoke: Invoke, workspace: Workspace) -> None:
    data = ["--data-dir", str(workspace.data)]
    assert (
        invoke(
            ["data", "sample", *data, "--symbol", "EURUSD", "--timeframe", "1h", "--rows", "300"]
        ).exit_code
        == 0
    )
    (workspace.data / "iris.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    listed = json.loads(invoke(["data", "list", *data, "--json"]).stdout)
    assert {d["path"]: d["kind"] for d in listed} == {"EURUSD_1h.csv": "candles", "iris.csv": "table"}
    table = next(d for d in listed if d["kind"] == "table")
    assert (table["format"], table["rows"], table["columns"]) == ("csv", 3, 3)
    text = invoke(["data", "list", *data]).output
    assert "Tables in" in text
    assert "iris.csv" in text


def test_data_list_on_an_empty_folder_says_how_to_get_samples(invoke: Invoke, workspace: Workspace) -> None:
    result = invoke(["data", "list", "--data-dir", str(workspace.data)])
    assert result.exit_code == 0
    assert "modelyard data sample" in result.output


def test_strategies_list_shows_valid_and_invalid_files(invoke: Invoke, workspace: Workspace) -> None:
    (workspace.strategies / "broken.yaml").write_text(BAD_STRATEGY)
    result = invoke(["strategies", "list", "--strategies-dir", str(workspace.strategies), "--json"])
    assert result.exit_code == 0
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["trend_momentum"]["valid"] is True
    assert infos["broken"]["valid"] is False
    assert "parameters" in infos["broken"]["error"]


def test_validate_accepts_a_shipped_strategy(invoke: Invoke, workspace: Workspace) -> None:
    result = invoke(["strategies", "validate", str(workspace.strategies / "trend_momentum.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid strategy 'trend_momentum'" in result.output


def test_validate_of_a_bad_file_names_field_and_line_and_exits_2(
    invoke: Invoke, workspace: Workspace
) -> None:
    bad = workspace.root / "broken.yaml"
    bad.write_text(BAD_STRATEGY)
    result = invoke(["strategies", "validate", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "fuzzy_sets.rsi_14.low.parameters" in result.stderr
    assert "line 7" in result.stderr


def test_validate_of_a_missing_file_exits_2_naming_it(invoke: Invoke, workspace: Workspace) -> None:
    missing = workspace.root / "nope.yaml"
    result = invoke(["strategies", "validate", str(missing)])
    assert result.exit_code == 2
    assert str(missing) in result.stderr
