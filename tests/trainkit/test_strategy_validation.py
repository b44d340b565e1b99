"""The strategy workload's preflight: what the data phase would refuse is refused before acceptance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shared.contracts.training import TrainingOverrides, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import ConfigError, DataError, DataNotFoundError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.storage import ModelStorage
from shared.trainkit.storage.names import validate_component
from shared.trainkit.workloads import WorkloadSettings, create_workload
from shared.trainkit.workloads.strategy.sample_data import write_sample_data
from shared.trainkit.workloads.strategy.schema import parse_strategy
from shared.trainkit.workloads.strategy.workload import StrategyWorkload

REPO = Path(__file__).resolve().parents[2]
TREND = (REPO / "strategies" / "trend_momentum.yaml").read_text()
REVERSION = (REPO / "strategies" / "mean_reversion.yaml").read_text()
# The sample EURUSD 1h file: 1500 weekday candles from 2024-10-04 12:00 to 2024-12-31 23:00.
FIRST, LAST = "2024-10-04", "2024-12-31"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_sample_data(folder, symbols=("EURUSD",), timeframes=("1h",), rows=1500)
    return folder


def _request(strategy: str = TREND, **fields: object) -> TrainingRequest:
    base: dict[str, object] = {
        "strategy_name": "s",
        "strategy_yaml": strategy,
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "overrides": TrainingOverrides(epochs=1),
    }
    return TrainingRequest.model_validate({**base, **fields})


def _validate_error(data_dir: Path, request: TrainingRequest) -> DataError:
    with pytest.raises(DataError) as caught:
        TrainingExecutor(data_dir, ModelStorage(data_dir / "unused")).validate(request)
    return caught.value


def test_dates_after_the_data_name_start_date_and_the_available_range(data_dir: Path) -> None:
    error = _validate_error(data_dir, _request(start_date=date(2025, 3, 1)))
    assert error.details["field"] == "start_date"
    assert FIRST in error.message
    assert LAST in error.message


def test_dates_before_the_data_name_end_date(data_dir: Path) -> None:
    error = _validate_error(data_dir, _request(end_date=date(2024, 1, 1)))
    assert error.details["field"] == "end_date"
    assert FIRST in error.message


def test_a_start_date_in_the_future_is_refused_as_such(data_dir: Path) -> None:
    future = datetime.now(UTC).date() + timedelta(days=30)
    error = _validate_error(data_dir, _request(start_date=future))
    assert error.details["field"] == "start_date"
    assert "in the future" in error.message
    assert (error.details["available_start"], error.details["available_end"]) == (FIRST, LAST)


def test_a_range_too_short_for_the_indicator_warm_up_names_start_date_and_the_range(data_dir: Path) -> None:
    error = _validate_error(data_dir, _request(start_date=date(2024, 12, 31)))  # one day: 24 candles
    assert error.details["field"] == "start_date"
    assert "warm-up" in error.message
    assert f"covers {FIRST} to {LAST}" in error.message
    assert error.details["needed"] > error.details["available"]


def test_a_range_too_short_for_labels_and_split_is_refused_before_training(data_dir: Path) -> None:
    # mean_reversion: warm-up 19, forward-return horizon 12 (and a gap of 12 at each split boundary)
    request = _request(REVERSION, start_date=date(2024, 12, 27), end_date=date(2024, 12, 30))
    error = _validate_error(data_dir, request)
    assert error.details["field"] == "start_date"
    assert "set would be empty" in error.message
    assert LAST in error.message


def test_a_whole_file_too_short_keeps_the_data_field_and_names_the_range(tmp_path: Path) -> None:
    write_sample_data(tmp_path, symbols=("EURUSD",), timeframes=("1h",), rows=40)
    error = _validate_error(tmp_path, _request())
    assert error.details["field"] == "candles"
    assert "40 candles" in error.message


def test_missing_data_is_still_data_not_found(data_dir: Path) -> None:
    with pytest.raises(DataNotFoundError, match="XAUUSD"):
        TrainingExecutor(data_dir, ModelStorage(data_dir / "unused")).validate(_request(symbols=["XAUUSD"]))


def test_valid_request_keeps_the_candles_for_the_data_phase(data_dir: Path) -> None:
    workload = create_workload(_request(start_date=date(2024, 11, 1)), WorkloadSettings(data_dir))
    assert isinstance(workload, StrategyWorkload)
    workload.validate()
    loaded = [s.candles for s in workload.series]
    assert len(loaded) == 1
    assert loaded[0].index[0].date() == date(2024, 11, 1)
    workload.run_phase("data_loading", CancelToken(), lambda fraction, message: None)
    after = [s.candles for s in workload.series]
    assert all(frame is before for frame, before in zip(after, loaded, strict=True))


@pytest.mark.parametrize("name", [".hidden", "a..b", "-dash", "_under", "has space", "x/y"])
def test_a_strategy_name_the_model_store_refuses_fails_at_parse_time(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_strategy(REVERSION.replace("name: mean_reversion", f'name: "{name}"'))
    assert caught.value.details["field"] == "name"
    with pytest.raises(ConfigError):
        validate_component(name, "name")


@pytest.mark.parametrize("name", ["mean_reversion", "v2.1", "EURUSD+AAPL", "a-b_c"])
def test_a_strategy_name_that_parses_is_one_the_model_store_accepts(name: str) -> None:
    config = parse_strategy(REVERSION.replace("name: mean_reversion", f'name: "{name}"'))
    assert validate_component(config.name, "strategy") == name
