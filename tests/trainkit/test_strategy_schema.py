"""Strategy YAML: valid files parse; every mistake is one ConfigError naming source, field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.trainkit.errors import ConfigError
from shared.trainkit.workloads.strategy.schema import (
    ForwardReturnLabels,
    list_strategies,
    load_strategy_file,
    parse_strategy,
)

STRATEGIES = Path(__file__).parents[2] / "strategies"

MINIMAL = """\
name: tiny
indicators:
  - name: rsi
  - name: macd
    params: {fast: 5, slow: 10, signal: 3}
fuzzy_sets:
  rsi_14:
    oversold: {type: trapezoidal, parameters: [0, 0, 25, 35]}
  macd_5_10_3_histogram_pct:
    up: {type: triangular, parameters: [0, 1, 2]}
labels: {method: zigzag, threshold: 0.03}
"""


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_strategy(text, source="s.yaml")
    return info.value


def test_minimal_strategy_gets_defaults_and_derived_ids() -> None:
    config = parse_strategy(MINIMAL)
    assert [s.id for s in config.indicators] == ["rsi_14", "macd_5_10_3"]
    assert config.indicators[0].resolved_params == {"period": 14}
    assert config.split.train == 0.7
    assert config.model.type == "mlp"
    assert config.training.epochs == 50


def test_forward_return_labels_are_selected_by_method() -> None:
    text = MINIMAL.replace(
        "labels: {method: zigzag, threshold: 0.03}",
        "labels: {method: forward_return, horizon: 4, buy_threshold: 0.01, sell_threshold: -0.02}",
    )
    labels = parse_strategy(text).labels
    assert isinstance(labels, ForwardReturnLabels)
    assert labels.horizon == 4


def test_explicit_id_is_kept() -> None:
    text = MINIMAL.replace("  - name: rsi\n", "  - name: rsi\n    id: my_rsi\n").replace("rsi_14:", "my_rsi:")
    assert parse_strategy(text).indicators[0].id == "my_rsi"


def test_yaml_syntax_error_names_source_and_line() -> None:
    error = _error("name: x\nindicators: [\n")
    assert error.details["source"] == "s.yaml"
    assert error.details["line"] == 3
    assert "YAML syntax error" in error.message
    assert "s.yaml" in error.message


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    assert "mapping" in _error("- a\n- b\n").message


def test_wrong_parameter_count_names_the_field_path_and_line() -> None:
    error = _error(MINIMAL.replace("[0, 0, 25, 35]", "[0, 25, 35]"))
    assert error.details["field"] == "fuzzy_sets.rsi_14.oversold.parameters"
    assert error.details["line"] == 8
    assert "needs exactly 4 numbers" in error.message


def test_descending_parameters_are_rejected() -> None:
    error = _error(MINIMAL.replace("[0, 1, 2]", "[2, 1, 0]"))
    assert error.details["field"] == "fuzzy_sets.macd_5_10_3_histogram_pct.up.parameters"
    assert "ascending" in error.message


def test_unknown_indicator_lists_the_known_ones() -> None:
    error = _error(MINIMAL.replace("  - name: rsi\n", "  - name: stoch\n"))
    assert error.details["field"] == "indicators.0.name"
    assert error.details["line"] == 3
    assert "'rsi'" in error.message


def test_fuzzy_set_referencing_a_missing_indicator_is_rejected() -> None:
    error = _error(MINIMAL.replace("  rsi_14:", "  rsi_7:"))
    assert error.details["field"] == "fuzzy_sets.rsi_7"
    assert error.details["line"] == 7
    assert "no declared indicator output" in error.message
    assert "rsi_14" in error.message


def test_wrong_types_are_reported_per_field() -> None:
    error = _error(MINIMAL.replace("threshold: 0.03", "threshold: lots"))
    assert error.details["field"] == "labels.threshold"  # the union tag 'zigzag' is not shown
    assert error.details["line"] == 11
    assert "number" in error.message


def test_unknown_and_bad_indicator_parameters_are_rejected() -> None:
    assert _error(MINIMAL.replace("fast: 5", "fats: 5")).details["field"] == "indicators.1.params.fats"
    assert "whole number" in _error(MINIMAL.replace("fast: 5", "fast: 5.5")).message
    assert "shorter than slow" in _error(MINIMAL.replace("fast: 5", "fast: 12")).message


def test_extra_keys_are_forbidden_everywhere() -> None:
    error = _error(MINIMAL + "model: {type: mlp, layers: [3]}\n")
    assert error.details["field"] == "model.layers"
    assert "remove it" in error.message


def test_split_must_sum_to_one_and_all_errors_are_listed() -> None:
    error = _error(MINIMAL + "split: {train: 0.5, val: 0.5, test: 0.5}\ntraining: {epochs: 0}\n")
    fields = [e["field"] for e in error.details["errors"]]
    assert fields == ["split", "training.epochs"]
    assert "sum to 1" in error.message


def test_duplicate_indicator_ids_are_rejected() -> None:
    error = _error(MINIMAL.replace("  - name: macd\n", "  - name: rsi\n  - name: macd\n"))
    assert error.details["field"] == "indicators.1.id"
    assert "duplicate" in error.message


def test_strategy_name_must_be_safe_for_a_model_path() -> None:
    assert _error(MINIMAL.replace("name: tiny", "name: ../evil")).details["field"] == "name"


def test_missing_required_section_is_named() -> None:
    error = _error(MINIMAL.replace("labels: {method: zigzag, threshold: 0.03}\n", ""))
    assert error.details["field"] == "labels"
    assert "add this field" in error.message


def test_shipped_strategies_are_all_valid() -> None:
    infos = list_strategies(STRATEGIES)
    assert len(infos) >= 2
    assert all(info.valid for info in infos), [info.error for info in infos if not info.valid]


def test_list_strategies_reports_an_invalid_file_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MINIMAL)
    (tmp_path / "bad.yml").write_text("name: [")
    (tmp_path / "notes.txt").write_text("ignored")
    infos = {i.name: i for i in list_strategies(tmp_path)}
    assert set(infos) == {"tiny", "bad"}
    assert infos["tiny"].valid
    assert not infos["bad"].valid
    assert infos["bad"].error is not None
    assert "YAML syntax error" in infos["bad"].error
    assert infos["tiny"].as_dict()["path"].endswith("good.yaml")


def test_missing_strategy_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read strategy file"):
        load_strategy_file(tmp_path / "nope.yaml")
