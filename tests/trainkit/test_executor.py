"""The executor end to end on small sample data: every workload, progress, cancellation, persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shared.contracts.training import (
    ProgressUpdate,
    TabularSpec,
    TrainingOverrides,
    TrainingRequest,
    Workload,
)
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.checkpoint import load_checkpoint
from shared.trainkit.errors import ConfigError, DataNotFoundError, TrainingCancelledError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.models import build_model
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.strategy.sample_data import write_sample_data

REPO = Path(__file__).resolve().parents[2]
STRATEGY = (REPO / "strategies" / "trend_momentum.yaml").read_text()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_sample_data(folder, symbols=("EURUSD", "AAPL"), timeframes=("1h",), rows=1500)
    return folder


def _request(**overrides: object) -> TrainingRequest:
    fields: dict[str, object] = {
        "strategy_name": "trend_momentum",
        "strategy_yaml": STRATEGY,
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "overrides": TrainingOverrides(epochs=3, batch_size=128),
    }
    fields.update(overrides)
    return TrainingRequest.model_validate(fields)


def _executor(data_dir: Path, tmp_path: Path, **kwargs: object) -> TrainingExecutor:
    return TrainingExecutor(data_dir, ModelStorage(tmp_path / "models"), **kwargs)  # type: ignore[arg-type]


def test_strategy_training_stores_a_model_and_reports_monotonic_progress(
    data_dir: Path, tmp_path: Path
) -> None:
    updates: list[ProgressUpdate] = []
    result = _executor(data_dir, tmp_path, run_root=tmp_path / "runs").execute(
        _request(), updates.append, CancelToken()
    )
    assert result.model.version == 1
    assert Path(result.model.path, "model.pt").is_file()
    assert result.device == "cpu"
    assert 1 <= result.epochs_trained <= 3
    assert [h["epoch"] for h in result.history] == list(range(1, result.epochs_trained + 1))
    assert 0.0 <= result.test_metrics["accuracy"] <= 1.0
    assert len(result.test_metrics["confusion_matrix"]) == 3
    assert result.feature_importance
    percentages = [u.percentage for u in updates]
    assert percentages == sorted(percentages)
    assert percentages[-1] == 100.0
    phases = {u.phase for u in updates}
    assert {"data_loading", "indicators", "labels", "training", "evaluation", "persistence"} <= phases
    assert any("epoch_metrics" in u.extra for u in updates)
    assert list((tmp_path / "runs").iterdir())


def test_stored_weights_rebuild_the_trained_model(data_dir: Path, tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path / "models")
    result = TrainingExecutor(data_dir, storage).execute(_request(), lambda u: None, CancelToken())
    config = storage.load_json(result.model.strategy, result.model.name, result.model.version, "config")
    checkpoint = load_checkpoint(Path(result.model.path) / "model.pt", expected_model_class="MLP")
    model = build_model(config["model"])
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    x = torch.zeros(4, config["model"]["input_dim"])
    assert model(x).shape == (4, 3)


def test_two_trainings_give_two_versions(data_dir: Path, tmp_path: Path) -> None:
    executor = _executor(data_dir, tmp_path)
    first = executor.execute(_request(), lambda u: None, CancelToken())
    second = executor.execute(_request(), lambda u: None, CancelToken())
    assert (first.model.version, second.model.version) == (1, 2)


def test_several_symbols_train_one_model(data_dir: Path, tmp_path: Path) -> None:
    result = _executor(data_dir, tmp_path).execute(
        _request(symbols=["EURUSD", "AAPL"]), lambda u: None, CancelToken()
    )
    assert result.model.name == "EURUSD+AAPL_1h"


def test_cancel_during_preprocessing_stops_before_training(data_dir: Path, tmp_path: Path) -> None:
    token = CancelToken()
    phases: list[str] = []

    def listener(update: ProgressUpdate) -> None:
        phases.append(update.phase)
        if update.phase == "indicators":
            token.cancel("test")

    with pytest.raises(TrainingCancelledError):
        _executor(data_dir, tmp_path).execute(_request(), listener, token)
    assert "training" not in phases
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("model.pt"))


def test_cancel_during_training_stops_within_an_epoch(data_dir: Path, tmp_path: Path) -> None:
    token = CancelToken()
    epochs_seen: list[int] = []

    def listener(update: ProgressUpdate) -> None:
        if "epoch_metrics" in update.extra:
            epochs_seen.append(update.extra["epoch_metrics"]["epoch"])
        if update.phase == "training" and update.epoch == 1:
            threading.Thread(target=token.cancel, args=("test",)).start()

    request = _request(overrides=TrainingOverrides(epochs=50, batch_size=16, early_stopping_patience=0))
    with pytest.raises(TrainingCancelledError):
        _executor(data_dir, tmp_path).execute(request, listener, token)
    assert max(epochs_seen, default=0) <= 2
    assert not any((tmp_path / "models").rglob("model.pt"))


def test_validate_reports_missing_data_and_bad_strategy(data_dir: Path, tmp_path: Path) -> None:
    executor = _executor(data_dir, tmp_path)
    with pytest.raises(DataNotFoundError, match="XAUUSD"):
        executor.validate(_request(symbols=["XAUUSD"]))
    with pytest.raises(ConfigError, match="indicators"):
        executor.validate(_request(strategy_yaml="name: broken\nindicators: []\n"))


def test_tabular_classification_trains_and_stores(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"a": rng.normal(size=400), "b": rng.normal(size=400), "colour": rng.choice(["r", "g"], 400)}
    )
    frame["label"] = np.where(frame["a"] + frame["b"] > 0, "up", "down")
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "points.csv", index=False)
    request = TrainingRequest(
        workload=Workload.TABULAR,
        tabular=TabularSpec(dataset="points.csv", target="label"),
        overrides=TrainingOverrides(epochs=15, learning_rate=0.01),
    )
    result = _executor(tmp_path / "data", tmp_path).execute(request, lambda u: None, CancelToken())
    assert result.model.strategy == "tabular"
    assert result.test_metrics["accuracy"] > 0.8
    assert next(iter(result.feature_importance)) in {"a", "b"}


def test_plugin_outside_the_allowlist_is_refused(data_dir: Path, tmp_path: Path) -> None:
    request = TrainingRequest(workload=Workload.PLUGIN, plugin="os:system")
    with pytest.raises(ConfigError, match="not allowed"):
        _executor(data_dir, tmp_path, plugin_allowlist=["tests.plugins"]).validate(request)


def test_plugin_factory_with_wrong_return_is_a_config_error(data_dir: Path, tmp_path: Path) -> None:
    request = TrainingRequest(workload=Workload.PLUGIN, plugin="tests.plugins.linear:not_a_pair")
    executor = _executor(data_dir, tmp_path, plugin_allowlist=["tests.plugins"])
    with pytest.raises(ConfigError, match="must return"):
        executor.execute(request, lambda u: None, CancelToken())


def test_allowed_plugin_trains_and_stores(data_dir: Path, tmp_path: Path) -> None:
    request = TrainingRequest(
        workload=Workload.PLUGIN, plugin="tests.plugins.linear:make", overrides=TrainingOverrides(epochs=5)
    )
    executor = _executor(data_dir, tmp_path, plugin_allowlist=["tests.plugins"])
    result = executor.execute(request, lambda u: None, CancelToken())
    assert result.model.strategy == "plugin"
    assert result.test_metrics["accuracy"] > 0.8


def test_stored_metrics_number_epochs_like_the_result(data_dir: Path, tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path / "models")
    result = TrainingExecutor(data_dir, storage).execute(_request(), lambda u: None, CancelToken())
    stored = storage.load_json(result.model.strategy, result.model.name, result.model.version, "metrics")
    assert stored["fit"]["best_epoch"] == result.best_epoch
    assert [h["epoch"] for h in stored["fit"]["history"]] == [h["epoch"] for h in result.history]
    assert result.history[0]["epoch"] == 1
