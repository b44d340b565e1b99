"""A request's params, dataset and the program itself, checked against a template before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.training import CommandSpec
from shared.trainkit.errors import ConfigError, DataNotFoundError
from shared.trainkit.workloads.command.arguments import (
    build_invocation,
    check_program,
    resolve_dataset,
    resolve_params,
)
from shared.trainkit.workloads.command.template import CommandTemplate, parse_template

TEMPLATE = """\
name: demo
argv:
  - "{python}"
  - train.py
  - --steps
  - "{steps}"
  - --lr
  - "{lr}"
  - --tag
  - "{tag}"
  - --opt
  - "{opt}"
  - {when: verbose, args: [--verbose]}
  - {when: dataset_path, args: [--data, "{dataset_path}"]}
  - --out
  - "{output_dir}"
params:
  steps: {type: int, default: 10, min: 1, max: 1000}
  lr: {type: float, default: 0.01, min: 0.000001, max: 1.0}
  tag: {type: str, default: base}
  opt: {type: choice, default: adam, choices: [adam, sgd]}
  verbose: {type: bool, default: false}
dataset: optional
"""

SMUGGLED = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "../x",
    "/etc/passwd",
    "--flag",
    "-x",
    "a\nb",
    "a\x00b",
    "a b",
    "a|b",
]


@pytest.fixture
def template() -> CommandTemplate:
    return parse_template(TEMPLATE, source="demo.yaml")


def _refused(template: CommandTemplate, **params: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve_params(template, params)
    return caught.value


def test_defaults_fill_every_param_the_request_leaves_out(template: CommandTemplate) -> None:
    assert resolve_params(template, {"steps": 5}) == {
        "steps": 5,
        "lr": 0.01,
        "tag": "base",
        "opt": "adam",
        "verbose": False,
    }


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"steps": "10"}, "command.params.steps", "a whole number"),
        ({"steps": 3.5}, "command.params.steps", "a whole number"),
        ({"steps": True}, "command.params.steps", "a whole number"),
        ({"lr": "fast"}, "command.params.lr", "a number"),
        ({"verbose": "true"}, "command.params.verbose", "true or false"),
        ({"verbose": 1}, "command.params.verbose", "true or false"),
        ({"opt": "rmsprop"}, "command.params.opt", "one of adam, sgd"),
        ({"tag": 7}, "command.params.tag", "text (str)"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(
    template: CommandTemplate, params: dict[str, Any], field: str, expected: str
) -> None:
    error = _refused(template, **params)
    assert error.details["field"] == field
    assert error.message.startswith(f"{field} must be {expected}")


def test_an_int_out_of_range_names_the_field_and_the_allowed_range(template: CommandTemplate) -> None:
    error = _refused(template, steps=5000)
    assert error.message == "command.params.steps must be a whole number from 1 to 1000, got 5000"
    assert _refused(template, steps=0).details["field"] == "command.params.steps"


def test_a_float_out_of_range_or_not_finite_is_refused(template: CommandTemplate) -> None:
    assert "from 1e-06 to 1" in _refused(template, lr=2.5).message
    assert "a finite number" in _refused(template, lr=float("nan")).message


def test_an_int_param_accepts_nothing_but_whole_numbers_and_a_float_param_takes_ints(
    template: CommandTemplate,
) -> None:
    values = resolve_params(template, {"steps": 7, "lr": 1})
    assert values["steps"] == 7
    assert values["lr"] == 1.0
    assert isinstance(values["lr"], float)


@pytest.mark.parametrize("value", SMUGGLED)
def test_a_str_param_smuggling_shell_paths_or_flags_is_refused(template: CommandTemplate, value: str) -> None:
    error = _refused(template, tag=value)
    assert error.details["field"] == "command.params.tag"


def test_an_unknown_param_lists_the_declared_ones(template: CommandTemplate) -> None:
    error = _refused(template, stepz=3)
    assert error.details["field"] == "command.params.stepz"
    assert "its params: lr, opt, steps, tag, verbose" in error.message


def test_a_required_param_left_out_is_refused() -> None:
    template = parse_template(
        "name: demo\nargv: ['{python}', '{label}']\n"
        "params: {label: {type: str, description: Label of the run.}}\n",
        source="demo.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        resolve_params(template, {})
    assert caught.value.details["field"] == "command.params.label"
    assert "is required" in caught.value.message


def test_a_value_with_spaces_stays_one_argv_element_under_a_custom_pattern(tmp_path: Path) -> None:
    template = parse_template(
        "name: demo\nargv: ['{python}', x.py, '--title={title}', '{title}']\n"
        "params: {title: {type: str, default: a, pattern: '[A-Za-z ;$()]+'}}\n",
        source="demo.yaml",
    )
    title = "two words; $(id)"
    values = resolve_params(template, {"title": title})
    invocation = build_invocation(
        template, tmp_path, values, output_dir=tmp_path / "out", dataset_path=None, run_name="r"
    )
    assert invocation.argv == [sys.executable, "x.py", f"--title={title}", title]


def test_the_custom_pattern_still_refuses_newlines_and_a_leading_dash() -> None:
    template = parse_template(
        "name: demo\nargv: ['{python}', '{title}']\nparams: {title: {type: str, default: a, pattern: '.*'}}\n",
        source="demo.yaml",
    )
    for value in ("a\nb", "a\rb", "a\x00b", "--exec"):
        with pytest.raises(ConfigError):
            resolve_params(template, {"title": value})


def test_optional_groups_follow_their_bool_and_the_dataset(template: CommandTemplate, tmp_path: Path) -> None:
    values = resolve_params(template, {"verbose": True, "lr": 0.5})
    data = tmp_path / "d.csv"
    argv = build_invocation(
        template, tmp_path, values, output_dir=tmp_path / "o", dataset_path=data, run_name="r"
    ).argv
    assert argv[2:] == [
        "--steps", "10", "--lr", "0.5", "--tag", "base", "--opt", "adam",
        "--verbose", "--data", str(data), "--out", str(tmp_path / "o"),
    ]  # fmt: skip
    plain = build_invocation(
        template, tmp_path, resolve_params(template, {}), output_dir=tmp_path, dataset_path=None, run_name="r"
    ).argv
    assert "--verbose" not in plain
    assert "--data" not in plain


# --- dataset ---------------------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.csv").write_text("a,b\n1,2\n")
    return folder


def test_a_dataset_inside_the_data_folder_resolves_to_its_real_path(
    template: CommandTemplate, data_dir: Path
) -> None:
    assert resolve_dataset(template, "train.csv", data_dir) == (data_dir / "train.csv").resolve()


@pytest.mark.parametrize("dataset", ["/etc/passwd", "../secret.csv", "sub/../../x", "-rf"])
def test_a_dataset_path_leaving_the_data_folder_is_refused(
    template: CommandTemplate, data_dir: Path, dataset: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_dataset(template, dataset, data_dir)
    assert caught.value.details["field"] == "command.dataset"
    assert not isinstance(caught.value, DataNotFoundError)


def test_a_symlink_in_the_data_folder_pointing_outside_is_refused(
    template: CommandTemplate, data_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n")
    (data_dir / "link.csv").symlink_to(outside)
    (data_dir / "linkdir").symlink_to(tmp_path)
    for dataset in ("link.csv", "linkdir/outside.csv"):
        with pytest.raises(ConfigError) as caught:
            resolve_dataset(template, dataset, data_dir)
        assert "leads outside the data folder" in caught.value.message


def test_a_missing_dataset_is_data_not_found(template: CommandTemplate, data_dir: Path) -> None:
    with pytest.raises(DataNotFoundError) as caught:
        resolve_dataset(template, "nope.csv", data_dir)
    assert caught.value.details["field"] == "command.dataset"


def test_a_template_without_dataset_refuses_one_and_a_required_one_demands_it(data_dir: Path) -> None:
    none = parse_template("name: a\nargv: ['{python}']\n", source="a.yaml")
    required = parse_template("name: b\nargv: ['{python}']\ndataset: required\n", source="b.yaml")
    with pytest.raises(ConfigError, match="takes no dataset"):
        resolve_dataset(none, "train.csv", data_dir)
    with pytest.raises(ConfigError, match=r"command\.dataset is required"):
        resolve_dataset(required, None, data_dir)
    assert resolve_dataset(none, None, data_dir) is None


# --- the program ------------------------------------------------------------------------------------------


def _check(text: str, command_dir: Path) -> None:
    template = parse_template(text, source="cmd.yaml")
    invocation = build_invocation(
        template, command_dir, {}, output_dir=command_dir, dataset_path=None, run_name="r"
    )
    check_program(invocation, template, "cmd.yaml")


def test_a_program_not_on_path_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _check("name: a\nargv: [no-such-trainer-xyz, --go]\n", tmp_path)
    assert caught.value.message == (
        "command 'a': program 'no-such-trainer-xyz' is not installed on this machine (not found on PATH); "
        "install it or fix argv[0] in cmd.yaml"
    )
    assert caught.value.details["field"] == "command.name"


def test_a_missing_script_file_is_refused_naming_script_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _check("name: a\nargv: ['{python}', missing_train.py]\n", tmp_path)
    assert f"script 'missing_train.py' does not exist in {tmp_path}" in caught.value.message


def test_a_relative_program_path_must_exist_and_be_executable(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(ConfigError, match="not found at that path"):
        _check("name: a\nargv: [./run.sh]\n", tmp_path)
    (tmp_path / "run.sh").chmod(0o755)
    _check("name: a\nargv: [./run.sh]\n", tmp_path)


def test_a_missing_workdir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"working folder .* does not exist"):
        _check("name: a\nargv: ['{python}']\nworkdir: nowhere\n", tmp_path)


def test_the_request_spec_is_checked_as_a_whole(template: CommandTemplate, data_dir: Path) -> None:
    from shared.trainkit.workloads.command.arguments import resolved_request

    spec = CommandSpec(name="demo", params={"steps": 3}, dataset="train.csv")
    values, dataset = resolved_request(template, spec, data_dir)
    assert values["steps"] == 3
    assert dataset == (data_dir / "train.csv").resolve()
