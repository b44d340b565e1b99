"""The executor's real path with training checkpoints: a cancelled strategy training resumed in the same
run folder continues from its last checkpoint, each epoch once in the result and the run record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.contracts.training import ProgressUpdate, TrainingOverrides, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import TrainingCancelledError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.executor import checkpoint_folder
from shared.trainkit.executor.workload import CheckpointPolicy
from shared.trainkit.resume import training_checkpoints
from shared.trainkit.run_record import METRICS_FILE
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.strategy.sample_data import write_sample_data

REPO = Path(__file__).resolve().parents[2]
STRATEGY = (REPO / "strategies" / "trend_momentum.yaml").read_text()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_sample_data(folder, symbols=("EURUSD",), timeframes=("1h",), rows=1200)
    return folder


def _request() -> TrainingRequest:
    return TrainingRequest.model_validate(
        {
            "strategy_name": "trend_momentum",
            "strategy_yaml": STRATEGY,
            "symbols": ["EURUSD"],
            "timeframes": ["1h"],
            "overrides": TrainingOverrides(epochs=6, batch_size=64, early_stopping_patience=0),
        }
    )


def _executor(data_dir: Path, tmp_path: Path) -> TrainingExecutor:
    return TrainingExecutor(
        data_dir,
        ModelStorage(tmp_path / "models"),
        run_root=tmp_path / "runs",
        checkpoints=CheckpointPolicy(every_epochs=1, min_interval_s=0),
    )


def test_a_cancelled_training_resumes_from_its_last_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    token = CancelToken()

    def cancel_after_epoch_3(update: ProgressUpdate) -> None:
        if update.extra.get("epoch_metrics", {}).get("epoch") == 3:
            token.cancel("test")

    executor = _executor(data_dir, tmp_path)
    with pytest.raises(TrainingCancelledError):
        executor.execute(_request(), cancel_after_epoch_3, token, run_name="op-1")
    folder = checkpoint_folder(tmp_path / "runs" / "op-1")
    assert [p.name for p in training_checkpoints(folder)] == ["epoch-000003.ckpt", "epoch-000002.ckpt"]

    updates: list[ProgressUpdate] = []
    result = executor.execute(_request(), updates.append, CancelToken(), run_name="op-1", resume=True)

    assert result.resumed_from_epoch == 3
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5, 6]
    [resume] = [u for u in updates if "resumed_from_epoch" in u.extra]
    assert resume.extra["resumed_from_epoch"] == 3
    # The restored epochs travel with it, for a follower that missed some (a host's backend).
    assert [row["epoch"] for row in resume.extra["resumed_history"]] == [1, 2, 3]
    sent_epochs = [u.extra["epoch_metrics"]["epoch"] for u in updates if "epoch_metrics" in u.extra]
    assert sent_epochs == [4, 5, 6]
    assert any(d["kind"] == "resume" and "resumed from epoch 3" in d["message"] for d in result.decisions)
    rows = (tmp_path / "runs" / "op-1" / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in rows] == [1, 2, 3, 4, 5, 6]


def test_without_a_policy_no_checkpoints_are_written(data_dir: Path, tmp_path: Path) -> None:
    executor = TrainingExecutor(data_dir, ModelStorage(tmp_path / "models"), run_root=tmp_path / "runs")
    result = executor.execute(_request(), lambda update: None, CancelToken(), run_name="op-2")
    assert result.resumed_from_epoch == 0
    assert not checkpoint_folder(tmp_path / "runs" / "op-2").exists()


def test_a_resume_with_no_checkpoint_starts_from_scratch_and_says_so_before_its_first_epoch(
    data_dir: Path, tmp_path: Path
) -> None:
    """A retry whose fault came before the first checkpoint: the run folder holds none."""
    updates: list[ProgressUpdate] = []
    executor = _executor(data_dir, tmp_path)
    result = executor.execute(_request(), updates.append, CancelToken(), run_name="op-3", resume=True)
    assert result.resumed_from_epoch == 0
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5, 6]
    said = [i for i, u in enumerate(updates) if "resumed_from_epoch" in u.extra]
    assert [updates[i].extra["resumed_from_epoch"] for i in said] == [0]
    epochs = [i for i, u in enumerate(updates) if "epoch_metrics" in u.extra]
    assert said[0] < epochs[0]
    assert any(d["kind"] == "resume" and "starting from scratch" in d["message"] for d in result.decisions)


def test_a_first_run_says_nothing_of_resuming(data_dir: Path, tmp_path: Path) -> None:
    updates: list[ProgressUpdate] = []
    _executor(data_dir, tmp_path).execute(_request(), updates.append, CancelToken(), run_name="op-4")
    assert not [u for u in updates if "resumed_from_epoch" in u.extra]
