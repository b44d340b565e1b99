"""Command templates: the shipped sample parses; every kind of mistake names where it is."""

from __future__ import annotations

import pytest

from shared.trainkit.errors import ConfigError
from shared.trainkit.workloads.command.catalog import SAMPLES_DIR
from shared.trainkit.workloads.command.template import (
    DEFAULT_METRICS,
    OptionalArgs,
    ParamType,
    load_template_file,
    parse_template,
)

VALID = """\
name: demo
argv: ["{python}", train.py, --steps, "{steps}"]
params:
  steps: {type: int, default: 10, min: 1, max: 100}
"""


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_template(text, source="demo.yaml")
    return caught.value


def test_the_shipped_toy_sample_parses_with_its_params_progress_and_artifacts() -> None:
    template = load_template_file(SAMPLES_DIR / "toy.yaml")
    assert template.name == "toy"
    assert template.params["steps"].type is ParamType.INT
    assert template.params["optimizer"].choices == ["adam", "sgd"]
    assert template.dataset == "optional"
    assert template.progress is not None
    assert (template.progress.metric, template.progress.total) == ("step", "steps")
    assert template.artifacts == ["model.pt", "*.json"]
    assert (template.checkpoints, template.resume_argv) == ("checkpoint.pt", ["--resume", "{checkpoint}"])
    assert template.metrics == DEFAULT_METRICS
    assert isinstance(template.argv[-1], OptionalArgs)
    assert template.argv[-1].when == "dataset_path"
    assert template.defaults()["steps"] == 600


def test_a_minimal_template_gets_the_seed_metrics_and_all_files_as_artifacts() -> None:
    template = parse_template(VALID, source="demo.yaml")
    assert template.metrics == DEFAULT_METRICS
    assert template.artifacts == ["**/*"]
    assert template.stop_grace_s == 10.0
    assert template.max_runtime_s is None


def test_a_yaml_syntax_error_names_its_line() -> None:
    error = _error("name: demo\nargv: [a, b\nparams: {}\n")
    assert "YAML syntax error at line" in error.message
    assert error.details["line"] in (2, 3)
    assert error.message.startswith("demo.yaml:")


def test_an_unknown_placeholder_names_the_argv_index_and_the_known_ones() -> None:
    error = _error(VALID.replace("--steps,", "--steps, '{stpes}',"))
    assert "argv.3: unknown placeholder {stpes}" in error.message
    assert error.details["field"] == "argv.3"
    assert error.details["line"] == 2
    assert "output_dir" in error.message
    assert "steps" in error.message


def test_an_unknown_placeholder_inside_an_optional_group_is_refused() -> None:
    text = VALID.replace(
        'argv: ["{python}", train.py, --steps, "{steps}"]',
        'argv: ["{python}", train.py, {when: steps, args: [--x, "{nope}"]}]',
    )
    assert "argv.2: unknown placeholder {nope}" in _error(text).message


def test_escaped_braces_are_not_placeholders() -> None:
    template = parse_template(VALID.replace("--steps,", "'{{literal}}', --steps,"), source="demo.yaml")
    assert template.argv[2] == "{{literal}}"


def test_a_choice_param_without_choices_is_refused() -> None:
    error = _error(VALID + "  opt: {type: choice, default: a}\n")
    assert "params.opt" in error.message
    assert "non-empty 'choices'" in error.message


def test_a_default_out_of_range_is_refused_naming_the_param_and_the_range() -> None:
    error = _error(VALID.replace("default: 10", "default: 500"))
    assert "params.steps.default must be a whole number from 1 to 100, got 500" in error.message


def test_a_metric_regex_without_exactly_one_group_is_refused() -> None:
    for pattern, groups in (("acc=[0-9.]+", 0), ("(acc)=([0-9.]+)", 2)):
        error = _error(VALID + f"metrics: {{acc: '{pattern}'}}\n")
        assert f"metric 'acc': the regex needs exactly one capture group, has {groups}" in error.message
        assert error.details["field"] == "metrics"


def test_an_invalid_metric_regex_is_refused() -> None:
    assert "not a valid regex" in _error(VALID + "metrics: {acc: 'acc=([0-9'}\n").message


@pytest.mark.parametrize("glob", ["../escape/*.pt", "out/../../x", "/etc/*"])
def test_an_artifact_glob_leaving_the_output_folder_is_refused(glob: str) -> None:
    error = _error(VALID + f"artifacts: ['{glob}']\n")
    assert f"artifact glob {glob!r} must stay inside {{output_dir}}" in error.message


def test_a_param_named_like_a_builtin_placeholder_is_refused() -> None:
    error = _error(VALID + "  output_dir: {type: str, default: x}\n")
    assert "param name 'output_dir'" in error.message


def test_an_unknown_field_is_refused_with_its_line() -> None:
    error = _error(VALID + "argvs: []\n")
    assert "argvs" in error.message
    assert error.details["line"] == 5


def test_a_template_that_is_not_a_mapping_is_refused() -> None:
    assert "must be a YAML mapping" in _error("- just\n- a list\n").message


def test_progress_total_must_name_an_int_param() -> None:
    error = _error(VALID + "  label: {type: str, default: x}\nprogress: {total: label}\n")
    assert "progress.total: 'label' is not an int param" in error.message


def test_a_metric_regex_with_a_global_flag_is_refused_with_the_scoped_form() -> None:
    error = _error(VALID + "metrics: {acc: '(?i)acc=([0-9.]+)'}\n")
    assert "metric 'acc'" in error.message
    assert "(?i:loss) instead of (?i)loss" in error.message
    scoped = parse_template(VALID + "metrics: {acc: '(?i:acc)=([0-9.]+)'}\n", source="demo.yaml")
    assert scoped.metrics == {"acc": "(?i:acc)=([0-9.]+)"}
