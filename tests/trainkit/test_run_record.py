"""The run record: files on success, failure and cancellation; rollups; writer backpressure."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from shared.trainkit.callbacks import ModelCheckpoint, RunRecorder
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import TrainerConfig
from shared.trainkit.errors import DataError, TrainingCancelledError
from shared.trainkit.run_record import MetricsWriter, percentile, summarize_metrics
from shared.trainkit.spi import Batch, TrainStepOutput
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import BlobData, TinyClassifier


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_successful_fit_writes_all_four_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    callbacks = [RunRecorder(run_dir), ModelCheckpoint(run_dir / "ckpt")]
    Trainer(TrainerConfig(max_epochs=3, batch_size=16, seed=9), callbacks).fit(TinyClassifier(), BlobData())

    run = _json(run_dir / "run.json")
    assert run["seed"] == 9
    assert run["config"]["max_epochs"] == 3
    assert run["device"]["kind"] == "cpu"
    assert run["torch"]
    assert run["python"]
    assert run["started_at"]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "duration_s"} <= set(lines[0])
    summary = _json(run_dir / "run_summary.json")
    assert summary["status"] == "completed"
    assert summary["epochs"] == 3
    losses = [line["val_loss"] for line in lines]
    rollup = summary["metrics"]["val_loss"]
    assert (rollup["min"], rollup["max"], rollup["last"]) == (min(losses), max(losses), losses[-1])
    assert set(rollup) == {"min", "max", "mean", "p50", "p95", "last", "count"}
    artifacts = {Path(a["path"]).name: a for a in _json(run_dir / "artifacts.json")}
    assert artifacts["best.pt"]["kind"] == "checkpoint"
    assert artifacts["metrics.jsonl"]["kind"] == "metrics"
    assert artifacts["last.pt"]["bytes"] == (run_dir / "ckpt" / "last.pt").stat().st_size
    assert len(artifacts["last.pt"]["sha256"]) == 64
    best_line = min(lines, key=lambda line: line["val_loss"])
    assert summary["best_epoch"] == best_line["epoch"]


def _listed_artifacts(run_dir: Path) -> dict[Path, Any]:
    return {Path(a["path"]): a for a in _json(run_dir / "artifacts.json")}


def test_artifacts_json_lists_every_file_the_run_wrote_with_kind_size_and_hash(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    callbacks = [RunRecorder(run_dir), ModelCheckpoint(run_dir / "ckpt")]
    Trainer(TrainerConfig(max_epochs=2, batch_size=16), callbacks).fit(TinyClassifier(), BlobData())

    listed = _listed_artifacts(run_dir)
    written = {path for path in run_dir.rglob("*") if path.is_file()} - {run_dir / "artifacts.json"}
    assert set(listed) == written
    assert {path.name: a["kind"] for path, a in listed.items()} == {
        "run.json": "config",
        "metrics.jsonl": "metrics",
        "run_summary.json": "report",
        "last.pt": "checkpoint",
        "best.pt": "checkpoint",
    }
    for path, artifact in listed.items():
        assert artifact["bytes"] == path.stat().st_size
        assert artifact["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_artifacts_of_a_failed_run_list_its_record_files(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        Trainer(TrainerConfig(max_epochs=2, batch_size=16), [RunRecorder(tmp_path)]).fit(_Crash(), BlobData())
    names = {path.name for path in _listed_artifacts(tmp_path)}
    assert names == {"run.json", "metrics.jsonl", "run_summary.json"}


class _Crash(TinyClassifier):
    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        if batch_idx == 1:
            raise DataError("row 17 is broken", row=17)
        return super().training_step(batch, batch_idx)


def test_failed_fit_still_writes_summary_with_the_error(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        Trainer(TrainerConfig(max_epochs=2, batch_size=16), [RunRecorder(tmp_path)]).fit(_Crash(), BlobData())
    summary = _json(tmp_path / "run_summary.json")
    assert summary["status"] == "failed"
    assert summary["error"] == {
        "type": "DataError",
        "code": "invalid_data",
        "message": "row 17 is broken",
        "details": {"row": 17},
    }
    assert (tmp_path / "run.json").exists()
    assert (tmp_path / "artifacts.json").exists()


def test_cancelled_fit_is_recorded_as_cancelled(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel("stop")
    with pytest.raises(TrainingCancelledError):
        Trainer(TrainerConfig(max_epochs=2), [RunRecorder(tmp_path)], cancel=token).fit(
            TinyClassifier(), BlobData()
        )
    assert _json(tmp_path / "run_summary.json")["status"] == "cancelled"


def test_failure_before_fit_start_still_leaves_a_record(tmp_path: Path) -> None:
    data = BlobData()

    def broken_setup(stage: object) -> None:
        raise DataError("dataset missing", file="x.csv")

    data.setup = broken_setup  # type: ignore[method-assign]
    with pytest.raises(DataError):
        Trainer(TrainerConfig(max_epochs=1), [RunRecorder(tmp_path)]).fit(TinyClassifier(), data)
    assert _json(tmp_path / "run_summary.json")["status"] == "failed"
    assert _json(tmp_path / "run.json")["config"]["max_epochs"] == 1


def test_summarize_metrics_rolls_up_every_numeric_column() -> None:
    rows = [{"epoch": i, "loss": float(v), "val_loss": None, "name": "x"} for i, v in enumerate(range(1, 21))]
    summary = summarize_metrics(rows)
    assert set(summary) == {"loss"}
    assert summary["loss"] == {
        "min": 1.0,
        "max": 20.0,
        "mean": 10.5,
        "p50": 10.5,
        "p95": pytest.approx(19.05),
        "last": 20.0,
        "count": 20,
    }


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0


def test_full_metrics_queue_drops_after_timeout_instead_of_stalling(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "metrics.jsonl", max_pending=1, put_timeout_s=0.01)
    # stall the writer thread (as a hung disk would) from its next read of the queue on
    gate = threading.Event()
    original = writer._queue.get

    def slow_get(*args: Any, **kwargs: Any) -> object:
        assert gate.wait(10)
        return original(*args, **kwargs)

    writer._queue.get = slow_get  # type: ignore[method-assign]
    results = [writer.write({"epoch": i}) for i in range(3)]
    assert results.count(False) >= 1
    assert writer.dropped == results.count(False)
    gate.set()
    assert writer.close(10)
    written = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(written) == results.count(True)
