"""Every command explains itself, and asking for help loads no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import Invoke

COMMANDS = [
    ["data", "sample"],
    ["data", "list"],
    ["strategies", "list"],
    ["strategies", "validate"],
    ["train"],
    ["ops", "list"],
    ["ops", "show"],
    ["ops", "cancel"],
    ["ops", "retry"],
    ["ops", "follow"],
    ["ops", "logs"],
    ["projects"],
    ["models", "list"],
    ["models", "show"],
    ["models", "download"],
    ["models", "delete"],
    ["models", "alias", "set"],
    ["models", "alias", "rm"],
    ["models", "alias", "list"],
    ["sweep", "start"],
    ["sweep", "show"],
    ["sweep", "cancel"],
    ["serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(invoke: Invoke, command: list[str]) -> None:
    result = invoke([*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"modelyard {' '.join(command)}" in result.output


def test_root_help_lists_every_group_and_a_first_training(invoke: Invoke) -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for group in ("data", "strategies", "train", "ops", "projects", "models", "serve"):
        assert f"  {group} " in result.output
    assert "modelyard train strategies/trend_momentum.yaml --symbol EURUSD --timeframe 1h" in result.output


def test_train_help_documents_exit_codes_and_the_server_env_var(invoke: Invoke) -> None:
    result = invoke(["train", "--help"])
    assert "130 cancelled" in result.output
    assert "MODELYARD_SERVER" in result.output
    assert "MODELYARD_DATA_DIR" in result.output


def test_importing_the_cli_does_not_import_torch() -> None:
    code = "import sys, backend.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_option_is_a_usage_error_with_exit_code_2(invoke: Invoke) -> None:
    result = invoke(["train", "x.yaml", "--epochz", "3"])
    assert result.exit_code == 2
    assert "No such option '--epochz'" in result.output
