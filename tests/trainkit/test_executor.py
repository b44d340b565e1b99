"""The executor end to end on small sample data: every workload, progress, cancellation, persistence."""

from __future__ import annotations

import json
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
from shared.trainkit.errors import ConfigError, DataNotFoundError, TrainingCancelledError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.model_file import load_weights
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
    assert Path(result.model.path, "model.safetensors").is_file()
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
    device_reports = [u.extra["device"] for u in updates if "device" in u.extra]
    assert device_reports == ["cpu"]
    first_epoch = next(i for i, u in enumerate(updates) if "epoch_metrics" in u.extra)
    assert any("device" in u.extra for u in updates[:first_epoch])
    assert list((tmp_path / "runs").iterdir())


def test_stored_model_loads_back_through_the_store(data_dir: Path, tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path / "models")
    result = TrainingExecutor(data_dir, storage).execute(_request(), lambda u: None, CancelToken())
    loaded = storage.load_model(result.model.strategy, result.model.name)
    checkpoint = load_weights(Path(result.model.path) / "model.safetensors", expected_model_class="MLP")
    state = loaded.module.state_dict()
    assert all(torch.equal(state[key], value) for key, value in checkpoint.state_dict.items())
    inputs = loaded.config["model"]["input_dim"]
    assert len(loaded.features["names"]) == inputs
    assert loaded.module(torch.zeros(4, inputs)).shape == (4, 3)


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
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("model.safetensors"))


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
    assert not any((tmp_path / "models").rglob("model.safetensors"))


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
        workload=Workload.PLUGIN,
        plugin="tests.plugins.linear:make",
        overrides=TrainingOverrides(epochs=5, learning_rate=0.05),
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_fails_at_the_start_of_execute_before_any_data_is_read(tmp_path: Path) -> None:
    updates: list[ProgressUpdate] = []
    request = _request(overrides=TrainingOverrides(epochs=1, device="cuda"))
    missing_data = tmp_path / "no-data-here"  # reading it would raise DataNotFoundError instead
    with pytest.raises(ConfigError) as caught:
        _executor(missing_data, tmp_path).execute(request, updates.append, CancelToken())
    assert caught.value.details["field"] == "overrides.device"
    assert "CUDA is not available" in caught.value.message
    assert updates == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_validate_accepts_a_device_this_machine_lacks(data_dir: Path, tmp_path: Path) -> None:
    request = _request(overrides=TrainingOverrides(epochs=1, device="cuda"))
    assert _executor(data_dir, tmp_path).validate(request) == []  # a GPU host may still run it


def test_epochs_count_from_one_in_result_decisions_progress_and_run_record(
    data_dir: Path, tmp_path: Path
) -> None:
    updates: list[ProgressUpdate] = []
    request = _request(overrides=TrainingOverrides(epochs=4, batch_size=128, early_stopping_patience=1))
    result = _executor(data_dir, tmp_path, run_root=tmp_path / "runs").execute(
        request, updates.append, CancelToken(), run_name="run"
    )
    epochs = list(range(1, result.epochs_trained + 1))
    assert [h["epoch"] for h in result.history] == epochs
    best = min(result.history, key=lambda h: h["val_loss"])
    assert result.best_epoch == best["epoch"]
    assert {d["epoch"] for d in result.decisions} <= set(epochs)
    assert [u.extra["epoch_metrics"]["epoch"] for u in updates if "epoch_metrics" in u.extra] == epochs
    assert {u.epoch for u in updates if u.phase == "training" and u.epoch is not None} <= set(epochs)
    first_batch = next(u for u in updates if u.phase == "training" and u.message.startswith("epoch "))
    assert (first_batch.epoch, first_batch.message[:8]) == (1, "epoch 1/")
    run = tmp_path / "runs" / "run"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == epochs
    assert json.loads((run / "run_summary.json").read_text())["best_epoch"] == result.best_epoch


def test_tabular_regression_learns_a_large_offset_target_and_reports_it_in_its_own_units(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    frame["price"] = 5000 + 300 * frame["a"] - 200 * frame["b"] + rng.normal(scale=20, size=500)
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "prices.csv", index=False)
    request = TrainingRequest(
        workload=Workload.TABULAR,
        tabular=TabularSpec(dataset="prices.csv", target="price", task="regression"),
    )
    result = _executor(tmp_path / "data", tmp_path).execute(request, lambda u: None, CancelToken())
    assert result.test_metrics["r2"] > 0.95  # with the raw target the defaults scored r2 < 0
    assert result.test_metrics["rmse"] < 100  # in the target's own units (noise 20, spread ~360)
    assert result.model is not None
    features = json.loads((Path(result.model.path) / "features.json").read_text())
    mean, std = features["normalization"]["target"]
    assert 4950 < mean < 5050
    assert 300 < std < 420
