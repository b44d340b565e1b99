"""The typed result models send exactly what was stored: same keys, same numbers, unknown keys kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.contracts.api import ModelMetrics
from shared.contracts.operations import OperationMetrics
from shared.contracts.results import TrainingResult, lenient

STORED: dict[str, Any] = {
    "model": {"strategy": "trend_momentum", "name": "EURUSD_1h", "version": 3, "path": "models/x_v3"},
    "device": "cpu",
    "test_metrics": {
        "accuracy": 0.5,
        "macro_f1": 0.25,
        "per_class": {"BUY": {"precision": 0.5, "recall": 1, "f1": 0.66, "support": 232.0}},
        "confusion_matrix": [[1, 2], [3, 4]],
        "class_names": ["BUY", "SELL"],
        "samples": 10,
        "sharpe": 1.5,
    },
    "best_epoch": 2,
    "best_val_loss": None,
    "epochs_trained": 2,
    "stop_reason": "max_epochs",
    "feature_importance": {"rsi": 0.1, "zero": 0},
    "duration_s": 2,
    "decisions": [{"epoch": 2, "kind": "lr_reduced", "message": "lr 0.001 -> 0.0005", "new_lr": 0.0005}],
    "warnings": [],
    "telemetry": {"epoch": {"count": 2, "total_s": 0.5, "mean_s": 0.25}},
    "host_session_id": "s1",
    "a_newer_field": {"anything": [1, "two"]},
}


def test_a_stored_result_is_sent_unchanged() -> None:
    result = TrainingResult.model_validate(STORED)
    assert json.loads(result.model_dump_json()) == STORED
    assert result.model is not None
    assert result.model.version == 3
    assert result.test_metrics is not None
    assert result.test_metrics.per_class is not None
    assert result.test_metrics.per_class["BUY"].support == 232.0


def test_fields_a_result_did_not_carry_stay_out_of_the_json() -> None:
    sent = json.loads(TrainingResult.model_validate({"device": "cpu", "model": None}).model_dump_json())
    assert sent == {"device": "cpu", "model": None}


def test_a_key_of_the_wrong_shape_is_left_out_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    result = lenient(TrainingResult, {**STORED, "test_metrics": "not an object"})
    sent = json.loads(result.model_dump_json())
    assert "test_metrics" not in sent
    assert sent["device"] == "cpu"
    assert "test_metrics" in caplog.text


def test_command_metrics_and_step_rows_are_sent_unchanged() -> None:
    metrics = {"final": {"loss": 0.5, "acc": 1}, "best_val_loss": None}
    assert json.loads(ModelMetrics.model_validate(metrics).model_dump_json()) == metrics
    rows = [{"step": 10, "loss": 0.5}, {"step": 20, "loss": 0.25, "val_loss": 0.3}]
    view = OperationMetrics.model_validate(
        {"operation_id": "op", "status": "completed", "history": rows, "analysis": {"monitor": "val_loss"}}
    )
    sent = json.loads(view.model_dump_json())
    assert sent["history"] == rows
    assert sent["analysis"] == {"monitor": "val_loss"}
