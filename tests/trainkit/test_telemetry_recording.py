"""Telemetry in a run: one event per epoch from the callback, rollups merged into the run summary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from shared.trainkit.callbacks import RunRecorder, TelemetryCallback
from shared.trainkit.config import TrainerConfig
from shared.trainkit.errors import TrainingDivergedError
from shared.trainkit.run_record import TELEMETRY_FILE, write_telemetry_summary
from shared.trainkit.spi import Batch, TrainStepOutput
from shared.trainkit.telemetry import Telemetry
from shared.trainkit.trainer import Trainer
from tests.trainkit.conftest import BlobData, RecordingCallback, TinyClassifier


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_callback_records_one_epoch_event_per_training_epoch(tmp_path: Path) -> None:
    telemetry = Telemetry(tmp_path / TELEMETRY_FILE)
    recorder = RecordingCallback()
    callbacks = [TelemetryCallback(telemetry), recorder]
    Trainer(TrainerConfig(max_epochs=3, batch_size=16), callbacks).fit(TinyClassifier(), BlobData())
    telemetry.close()

    events = _lines(tmp_path / TELEMETRY_FILE)
    assert [(e["name"], e["epoch"], e["ok"], e["error"]) for e in events] == [
        ("epoch", 1, True, None),
        ("epoch", 2, True, None),
        ("epoch", 3, True, None),
    ]
    assert all(e["duration_s"] > 0 for e in events)
    rollup = telemetry.rollups()["epoch"]
    assert rollup["count"] == 3
    assert rollup["total_s"] == pytest.approx(sum(e["duration_s"] for e in events), abs=1e-5)
    assert recorder.calls[-1] == "on_fit_end"  # telemetry changes nothing about the fit


class _NanInSecondEpoch(TinyClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        output = super().training_step(batch, batch_idx)
        self.batches += 1
        return TrainStepOutput(loss=output.loss * torch.nan) if self.batches > 6 else output


def test_epoch_the_fit_raises_in_is_recorded_as_failed(tmp_path: Path) -> None:
    telemetry = Telemetry(tmp_path / TELEMETRY_FILE)
    trainer = Trainer(TrainerConfig(max_epochs=3, batch_size=16), [TelemetryCallback(telemetry)])
    with pytest.raises(TrainingDivergedError):
        trainer.fit(_NanInSecondEpoch(), BlobData())  # 96 rows: 6 batches per epoch
    telemetry.close()

    events = _lines(tmp_path / TELEMETRY_FILE)
    assert [(e["epoch"], e["ok"], e["error"]) for e in events] == [
        (1, True, None),
        (2, False, "TrainingDivergedError"),
    ]


def test_telemetry_summary_merges_into_the_run_summary_and_keeps_the_artifact_list_true(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    telemetry = Telemetry(run_dir / TELEMETRY_FILE)
    callbacks = [RunRecorder(run_dir), TelemetryCallback(telemetry)]
    with telemetry.timer("training"):
        Trainer(TrainerConfig(max_epochs=2, batch_size=16), callbacks).fit(TinyClassifier(), BlobData())
    telemetry.close()
    before = _json(run_dir / "run_summary.json")

    write_telemetry_summary(run_dir, telemetry.rollups())

    summary = _json(run_dir / "run_summary.json")
    assert {k: v for k, v in summary.items() if k != "telemetry"} == before
    assert summary["telemetry"] == telemetry.rollups()
    assert summary["telemetry"]["epoch"]["count"] == 2
    listed = {Path(a["path"]).name: a for a in _json(run_dir / "artifacts.json")}
    assert listed[TELEMETRY_FILE]["kind"] == "telemetry"
    for name in ("run_summary.json", TELEMETRY_FILE):
        assert listed[name]["sha256"] == hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
        assert listed[name]["bytes"] == (run_dir / name).stat().st_size


def test_telemetry_summary_replaces_only_its_own_key_and_creates_an_absent_summary(tmp_path: Path) -> None:
    rollups: dict[str, dict[str, float | int]] = {
        "spawn": {"count": 1, "total_s": 0.2, "mean_s": 0.2, "p50_s": 0.2, "p95_s": 0.2, "max_s": 0.2}
    }
    write_telemetry_summary(tmp_path / "fresh", rollups)
    assert _json(tmp_path / "fresh" / "run_summary.json") == {"telemetry": rollups}
    assert not (tmp_path / "fresh" / "artifacts.json").exists()

    (tmp_path / "run_summary.json").write_text(json.dumps({"status": "failed", "telemetry": {"old": {}}}))
    write_telemetry_summary(tmp_path, rollups)
    assert _json(tmp_path / "run_summary.json") == {"status": "failed", "telemetry": rollups}
