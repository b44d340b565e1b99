"""``modelyard train`` in-process: real trainings on tiny data into temp folders, errors, Ctrl-C."""

from __future__ import annotations

import _thread
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from backend.cli.local_training import create_executor, new_run_name
from backend.cli.options import CliEnv, Executor
from shared.contracts.training import ProgressUpdate, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor.types import ProgressCallback, TrainingResult
from tests.cli.conftest import Invoke, Workspace

MARKET = ["--symbol", "EURUSD", "--timeframe", "1h"]
FAST = ["--epochs", "2", "--seed", "1", "--device", "cpu"]
RUN_NAME = re.compile(r"run-\d{8}-\d{6}-[0-9a-f]{6}")


def test_two_trainings_store_v1_then_v2_with_latest_on_v2(
    invoke: Invoke, workspace_with_data: Workspace
) -> None:
    ws = workspace_with_data
    strategy = str(ws.strategies / "trend_momentum.yaml")
    first = invoke(["train", strategy, *MARKET, *FAST, *ws.train_folders()])
    assert first.exit_code == 0, first.output
    assert "test accuracy" in first.stdout
    assert "macro F1" in first.stdout
    assert "F1 BUY" in first.stdout
    assert "EURUSD_1h_v1" in first.stdout

    second = invoke(["train", "trend_momentum", *MARKET, *FAST, *ws.train_folders()])  # by name this time
    assert second.exit_code == 0, second.output
    assert "EURUSD_1h_v2" in second.stdout
    folder = ws.models / "trend_momentum"
    assert os.readlink(folder / "EURUSD_1h_latest") == "EURUSD_1h_v2"
    assert (folder / "EURUSD_1h_v1" / "model.safetensors").is_file()
    runs = sorted(p.name for p in ws.runs.iterdir())
    assert len(runs) == 2  # one run folder each, even when both start within the same second
    assert all(RUN_NAME.fullmatch(name) for name in runs), runs
    assert f"run record in {ws.runs}" in second.stdout


def test_run_names_started_in_the_same_second_differ_and_sort_by_time() -> None:
    second = datetime(2025, 1, 5, 10, 0, 0, tzinfo=UTC)
    names = {new_run_name(second) for _ in range(20)}
    assert len(names) == 20
    assert all(name.startswith("run-20250105-100000-") and RUN_NAME.fullmatch(name) for name in names)
    assert new_run_name(second) < new_run_name(datetime(2025, 1, 5, 10, 0, 1, tzinfo=UTC))


def test_json_output_is_the_training_result(invoke: Invoke, workspace_with_data: Workspace) -> None:
    ws = workspace_with_data
    result = invoke(["train", "mean_reversion", *MARKET, *FAST, "--json", *ws.train_folders()])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"]["version"] == 1
    assert body["epochs_trained"] <= 2
    assert body["device"] == "cpu"
    assert 0.0 <= body["test_metrics"]["accuracy"] <= 1.0


def test_models_list_and_show_read_the_local_store(invoke: Invoke, workspace_with_data: Workspace) -> None:
    ws = workspace_with_data
    for _ in range(2):
        assert invoke(["train", "trend_momentum", *MARKET, *FAST, *ws.train_folders()]).exit_code == 0
    listed = invoke(["models", "list", "--models-dir", str(ws.models), "--json"])
    assert json.loads(listed.stdout) == [
        {
            **json.loads(listed.stdout)[0],
            "strategy": "trend_momentum",
            "name": "EURUSD_1h",
            "latest_version": 2,
        }
    ]
    shown = invoke(["models", "show", "trend_momentum", "EURUSD_1h", "--models-dir", str(ws.models)])
    assert shown.exit_code == 0
    assert "v2 (latest)" in shown.stdout
    assert "v1" in shown.stdout


def test_models_show_of_an_unknown_model_exits_2(invoke: Invoke, workspace: Workspace) -> None:
    result = invoke(["models", "show", "trend_momentum", "NOPE_1h", "--models-dir", str(workspace.models)])
    assert result.exit_code == 2
    assert "trend_momentum" in result.stderr
    assert "Traceback" not in result.output


def test_missing_data_prints_the_message_without_traceback_and_exits_2(
    invoke: Invoke, workspace: Workspace
) -> None:
    result = invoke(["train", "trend_momentum", *MARKET, *FAST, *workspace.train_folders()])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "EURUSD_1h.csv" in result.stderr


def test_unknown_strategy_name_lists_the_known_ones(invoke: Invoke, workspace_with_data: Workspace) -> None:
    result = invoke(["train", "no_such", *MARKET, *workspace_with_data.train_folders()])
    assert result.exit_code == 2
    assert "mean_reversion" in result.stderr
    assert "trend_momentum" in result.stderr


def test_strategy_training_needs_symbol_and_timeframe(invoke: Invoke, workspace_with_data: Workspace) -> None:
    result = invoke(["train", "trend_momentum", "--symbol", "EURUSD", *workspace_with_data.train_folders()])
    assert result.exit_code == 2
    assert "--timeframe" in result.stderr


def test_end_date_before_start_date_is_rejected_before_training(
    invoke: Invoke, workspace_with_data: Workspace
) -> None:
    dates = ["--start-date", "2024-06-01", "--end-date", "2024-05-01"]
    result = invoke(["train", "trend_momentum", *MARKET, *dates, *workspace_with_data.train_folders()])
    assert result.exit_code == 2
    assert "start_date must not be after end_date" in result.stderr


class InterruptedExecutor:
    """Reports one epoch, then presses Ctrl-C in the main thread and waits for the cancel to arrive."""

    def __init__(self) -> None:
        self.cancelled_by_token = False

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
    ) -> TrainingResult:
        progress(
            ProgressUpdate(percentage=30, phase="training", epoch=1, total_epochs=5, metrics={"loss": 1.0})
        )
        _thread.interrupt_main()
        self.cancelled_by_token = cancel.wait(timeout=30)
        cancel.raise_if_cancelled("training")
        raise AssertionError("the CLI never cancelled the token")


def test_ctrl_c_sets_the_cancel_token_and_exits_130(invoke: Invoke, workspace_with_data: Workspace) -> None:
    fake = InterruptedExecutor()
    env = CliEnv(executor_factory=lambda data, models, runs: fake)
    result = invoke(["train", "trend_momentum", *MARKET, *workspace_with_data.train_folders()], env=env)
    assert result.exit_code == 130
    assert fake.cancelled_by_token
    assert "cancelled" in result.stderr


class CtrlCAtFirstEpoch:
    """The real executor, with Ctrl-C pressed when the first epoch is reported."""

    def __init__(self, real: Executor) -> None:
        self.real = real
        self.pressed = False

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
    ) -> TrainingResult:
        def watch(update: ProgressUpdate) -> None:
            progress(update)
            if update.epoch is not None and not self.pressed:
                self.pressed = True
                _thread.interrupt_main()
            if self.pressed:
                # Hold the run (in whichever thread reports next) until the CLI has turned the Ctrl-C into a
                # cancel: a tiny training could otherwise finish before the main thread sees the interrupt.
                cancel.wait(30)

        return self.real.execute(request, watch, cancel, run_name=run_name)


def test_ctrl_c_during_a_real_training_cancels_it_and_stores_nothing(
    invoke: Invoke, workspace_with_data: Workspace
) -> None:
    ws = workspace_with_data

    def factory(data: Path, models: Path, runs: Path) -> Executor:
        return CtrlCAtFirstEpoch(create_executor(data, models, runs))

    result = invoke(["train", "trend_momentum", *MARKET, "--epochs", "50", *ws.train_folders()],
                    env=CliEnv(executor_factory=factory))  # fmt: skip
    assert result.exit_code == 130, result.output
    assert "cancelled" in result.stderr
    assert list(ws.models.glob("*/EURUSD_1h_v*")) == []


def test_tabular_workload_trains_on_any_csv_with_a_target(invoke: Invoke, workspace: Workspace) -> None:
    workspace.data.mkdir()
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 11},{'up' if i % 7 > 3 else 'down'}" for i in range(200)]
    (workspace.data / "toy.csv").write_text("\n".join(rows) + "\n")
    args = ["train", "toy", "--workload", "tabular", "--dataset", "toy.csv", "--target", "label", *FAST]
    result = invoke([*args, "--json", *workspace.train_folders()])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["version"] == 1


def test_tabular_workload_needs_dataset_and_target(invoke: Invoke, workspace: Workspace) -> None:
    result = invoke(["train", "toy", "--workload", "tabular", "--dataset", "toy.csv"])
    assert result.exit_code == 2
    assert "--target COLUMN" in result.stderr
