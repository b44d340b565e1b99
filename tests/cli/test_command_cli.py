"""``modelyard commands``: list, show, validate and an in-process run of the shipped sample."""

from __future__ import annotations

import json
from pathlib import Path

from backend.cli.command_commands import parse_params
from backend.cli.progress_display import describe_progress
from shared.contracts.training import ProgressUpdate
from shared.trainkit.workloads.command.catalog import write_sample_commands
from tests.cli.conftest import Invoke


def _commands(tmp_path: Path) -> Path:
    folder = tmp_path / "commands"
    write_sample_commands(folder)
    (folder / "broken.yaml").write_text("name: broken\nargv: [x, '{nope}']\n")
    return folder


def test_list_shows_the_sample_and_a_broken_template_with_its_line(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke(["commands", "list", "--commands-dir", str(_commands(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    views = {view["name"]: view for view in json.loads(result.output)}
    assert views["toy"]["valid"]
    assert "steps" in views["toy"]["params"]
    assert not views["broken"]["valid"]
    assert "line 2" in views["broken"]["error"]
    assert "{nope}" in views["broken"]["error"]


def test_show_prints_the_params_with_ranges_and_an_unknown_name_exits_2(
    invoke: Invoke, tmp_path: Path
) -> None:
    folder = _commands(tmp_path)
    shown = invoke(["commands", "show", "toy", "--commands-dir", str(folder)])
    assert shown.exit_code == 0, shown.output
    assert "optimizer" in shown.output
    assert "adam, sgd" in shown.output
    missing = invoke(["commands", "show", "nope", "--commands-dir", str(folder)])
    assert missing.exit_code == 2
    assert "known commands: toy" in missing.output


def test_validate_names_the_line_of_a_broken_template(invoke: Invoke, tmp_path: Path) -> None:
    folder = _commands(tmp_path)
    good = invoke(["commands", "validate", str(folder / "toy.yaml")])
    assert good.exit_code == 0
    assert "valid command 'toy'" in good.output
    bad = invoke(["commands", "validate", str(folder / "broken.yaml")])
    assert bad.exit_code == 2
    assert "line 2" in bad.output
    assert "argv.1" in bad.output


def test_run_trains_the_sample_in_process_and_stores_its_files(invoke: Invoke, tmp_path: Path) -> None:
    folder = _commands(tmp_path)
    args = [
        "commands",
        "run",
        "toy",
        "-p",
        "steps=20",
        "-p",
        "val_every=10",
        "-p",
        "hidden=8",
        "--name",
        "cli",
    ]
    folders = ["--commands-dir", str(folder), "--data-dir", str(tmp_path / "data")]
    folders += ["--models-dir", str(tmp_path / "models"), "--runs-dir", str(tmp_path / "runs")]
    result = invoke([*args, *folders, "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["model"]["name"] == "cli"
    assert outcome["command"]["exit_code"] == 0
    assert [row["step"] for row in outcome["history"]] == [10, 20]
    stored = tmp_path / "models" / "toy" / "cli_v1" / "files"
    assert sorted(p.name for p in stored.iterdir()) == ["model.pt", "training.json"]
    [run] = (tmp_path / "runs").iterdir()
    assert run.name.startswith("cli-")  # --name names the run folder too, as with train
    assert (run / "output.log").is_file()


def test_a_bad_param_is_refused_before_anything_runs(invoke: Invoke, tmp_path: Path) -> None:
    folder = _commands(tmp_path)
    result = invoke(["commands", "run", "toy", "-p", "steps=0", "--commands-dir", str(folder)])
    assert result.exit_code == 2
    assert "command.params.steps must be a whole number from 1 to 1000000" in result.output
    assert not (tmp_path / "runs").exists()


def test_params_are_read_as_json_when_they_parse_and_as_text_otherwise() -> None:
    assert parse_params(("steps=300", "lr=0.01", "causal=true", "label=a-b", "name=[1]")) == {
        "steps": 300,
        "lr": 0.01,
        "causal": True,
        "label": "a-b",
        "name": "[1]",
    }


def test_a_command_runs_progress_line_shows_its_step() -> None:
    update = ProgressUpdate(percentage=40, phase="running", message="step 300/1000", metrics={"loss": 0.5})
    assert describe_progress(update) == "step 300/1000 · loss 0.5000"
