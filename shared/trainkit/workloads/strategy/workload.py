"""The strategy workload: candles -> indicators -> fuzzy memberships -> features -> labels -> MLP.

Several symbols or timeframes train one model: each dataset is featurised, labelled and split in time on
its own (so no set mixes past and future of one series), then the splits are concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.config import FitResult
from shared.trainkit.errors import DataError
from shared.trainkit.executor.array_workload import ArrayWorkload, PreparedArrays
from shared.trainkit.executor.model_workload import model_steps
from shared.trainkit.executor.progress import Step
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.executor.workload import StepReport
from shared.trainkit.normalization import standardize
from shared.trainkit.spi import TrainableModule
from shared.trainkit.workloads.strategy import candles as candle_data
from shared.trainkit.workloads.strategy import features as feature_engineering
from shared.trainkit.workloads.strategy import labels as labelling
from shared.trainkit.workloads.strategy.indicators import Prices
from shared.trainkit.workloads.strategy.schema import ForwardReturnLabels, StrategyConfig, parse_strategy
from shared.trainkit.workloads.strategy.splits import class_weights, time_split


@dataclass
class _Series:
    """One (symbol, timeframe) dataset as it moves through the phases."""

    symbol: str
    timeframe: str
    candles: pd.DataFrame
    prices: Prices | None = None
    outputs: dict[str, np.ndarray] | None = None
    memberships: dict[str, np.ndarray] | None = None
    features: feature_engineering.FeatureMatrix | None = None
    labels: np.ndarray | None = None


class StrategyWorkload(ArrayWorkload):
    kind = "strategy"
    steps = model_steps(
        (
            Step("data_loading", 4, "Loading data"),
            Step("indicators", 4, "Computing indicators"),
            Step("fuzzy_memberships", 3, "Computing fuzzy memberships"),
            Step("features", 2, "Engineering features"),
            Step("labels", 2, "Generating labels"),
            Step("dataset", 2, "Preparing dataset"),
        ),
        training=72,
        importance=4,
    )

    def __init__(self, request: TrainingRequest, data_dir: Path) -> None:
        super().__init__(request, data_dir)
        self.config: StrategyConfig | None = None
        self.series: list[_Series] = []

    def validate(self) -> None:
        """Parse the strategy, then load every dataset for the request's dates and check it can make a
        non-empty split; the loaded candles are kept for the data phase (loaded once per execution)."""
        source = self.request.strategy_name or "<inline strategy>"
        config = parse_strategy(self.request.strategy_yaml or "", source=source)
        self.config = config
        self.hidden_layers = list(config.model.hidden_layers)
        self.dropout = config.model.dropout
        self.activation = config.model.activation
        t = config.training
        self.params.epochs, self.params.batch_size = t.epochs, t.batch_size
        self.params.learning_rate, self.params.seed = t.learning_rate, t.seed
        self.params.early_stopping_patience = t.early_stopping_patience
        self.apply_overrides()
        self.series = [
            self._load_series(symbol, timeframe)
            for symbol in self.request.symbols
            for timeframe in self.request.timeframes
        ]

    def input_files(self) -> list[Path]:
        paths = (
            candle_data.candle_path(self.data_dir, symbol, timeframe)
            for symbol in self.request.symbols
            for timeframe in self.request.timeframes
        )
        return [path for path in paths if path.is_file()]

    def source_texts(self) -> dict[str, str]:
        return {"strategy_yaml": self.request.strategy_yaml or ""}

    def _load_series(self, symbol: str, timeframe: str) -> _Series:
        full = candle_data.load_candles(self.data_dir, symbol, timeframe)  # DataNotFoundError names the rest
        name = str(candle_data.candle_path(self.data_dir, symbol, timeframe))
        start, end = self.request.start_date, self.request.end_date
        first, last = full.index[0].date(), full.index[-1].date()
        today = datetime.now(UTC).date()
        if start is not None and start > today:
            raise DataError(
                f"start_date {start} is in the future (today is {today}, UTC); {name} covers {first} to "
                f"{last}: choose a start date inside that range",
                file=name,
                field="start_date",
                available_start=str(first),
                available_end=str(last),
            )
        frame = candle_data.select_dates(full, start, end, name)
        try:
            self._check_rows(frame)
        except DataError as exc:
            raise self._too_few_rows(exc, frame, full, name) from exc
        return _Series(symbol, timeframe, frame)

    def _check_rows(self, candles: pd.DataFrame) -> None:
        """What the indicators, labels and dataset phases would refuse, from the row count alone."""
        config = self._config()
        feature_engineering.check_enough_candles(candles, config)
        labelled = len(candles) - self._label_horizon()  # a zigzag's unlabelled tail is known only later
        rows = labelled - feature_engineering.warmup_rows(config)
        split = config.split
        time_split(rows, split.train, split.val, split.test, gap=self._label_horizon())

    def _too_few_rows(self, exc: DataError, frame: pd.DataFrame, full: pd.DataFrame, name: str) -> DataError:
        request = self.request
        first, last = full.index[0].date(), full.index[-1].date()
        covers = f"{name} covers {first} to {last} ({len(full)} candles)"
        if request.start_date is None and request.end_date is None:
            message, field = f"{exc.message} ({covers})", exc.details.get("field")
        else:
            field = "start_date" if request.start_date is not None else "end_date"
            message = (
                f"the dates {request.start_date or '…'} to {request.end_date or '…'} select {len(frame)} "
                f"candles of {name}, too few: {exc.message}. The data covers {first} to {last} "
                f"({len(full)} candles): widen the date range"
            )
        details = {**exc.details, "file": name, "field": field}
        return DataError(message, **details, available_start=str(first), available_end=str(last))

    def run_phase(self, phase: str, cancel: CancelToken, report: StepReport) -> str:
        return getattr(self, f"_phase_{phase}")(cancel, report)  # type: ignore[no-any-return]

    def _config(self) -> StrategyConfig:
        assert self.config is not None
        return self.config

    def _phase_data_loading(self, cancel: CancelToken, report: StepReport) -> str:
        if not self.series:  # validate() loads the candles; a caller that skipped it gets it here
            self.validate()
        for i, s in enumerate(self.series):
            report((i + 1) / len(self.series), f"loaded {s.symbol} {s.timeframe}: {len(s.candles)} candles")
        return ", ".join(f"{s.symbol} {s.timeframe}: {len(s.candles)} candles" for s in self.series)

    def _phase_indicators(self, cancel: CancelToken, report: StepReport) -> str:
        config = self._config()
        for i, s in enumerate(self.series):
            cancel.raise_if_cancelled("indicators")
            feature_engineering.check_enough_candles(s.candles, config)
            s.prices = Prices.from_candles(s.candles)
            s.outputs = feature_engineering.compute_indicators(s.prices, config)
            report((i + 1) / len(self.series), f"{s.symbol} {s.timeframe}: indicators computed")
        return f"{len(config.indicators)} indicators ({', '.join(spec.id for spec in config.indicators)})"

    def _phase_fuzzy_memberships(self, cancel: CancelToken, report: StepReport) -> str:
        config = self._config()
        for s in self.series:
            cancel.raise_if_cancelled("fuzzy_memberships")
            assert s.outputs is not None
            s.memberships = feature_engineering.fuzzy_memberships(s.outputs, config)
            s.outputs = None  # only the memberships are needed from here on
        sets = sum(len(v) for v in config.fuzzy_sets.values())
        return f"{sets} fuzzy sets over {len(config.fuzzy_sets)} inputs"

    def _phase_features(self, cancel: CancelToken, report: StepReport) -> str:
        config = self._config()
        for s in self.series:
            cancel.raise_if_cancelled("features")
            assert s.prices is not None
            assert s.memberships is not None
            s.features = feature_engineering.assemble(s.candles, s.prices, s.memberships, config)
            s.prices = s.memberships = None
        first = self.series[0].features
        assert first is not None
        return f"{len(first.names)} features, warm-up {first.first_row} candles"

    def _phase_labels(self, cancel: CancelToken, report: StepReport) -> str:
        spec = self._config().labels
        counts = np.zeros(3, dtype=np.int64)
        for s in self.series:
            cancel.raise_if_cancelled("labels")
            assert s.features is not None
            s.features, s.labels = labelling.align(s.features, labelling.make_labels(s.candles, spec))
            counts += np.bincount(s.labels, minlength=3)
        dist = ", ".join(f"{n}={c}" for n, c in zip(labelling.CLASS_NAMES, counts, strict=True))
        return f"{spec.method} labels: {dist}"

    def _phase_dataset(self, cancel: CancelToken, report: StepReport) -> str:
        split = self._config().split
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
        for s in self.series:
            assert s.features is not None
            assert s.labels is not None
            indices = time_split(len(s.labels), split.train, split.val, split.test, gap=self._label_horizon())
            for name, rows in indices.items():
                parts[name].append((s.features.values[rows], s.labels[rows]))
        x = {k: np.concatenate([p[0] for p in v]) for k, v in parts.items()}
        y = {k: np.concatenate([p[1] for p in v]).astype(np.int64) for k, v in parts.items()}
        if len(np.unique(y["train"])) < 2:
            raise DataError(
                "the training set holds a single label class; change the labels thresholds or use more data",
                field="labels",
            )
        (x_train, x_val, x_test), stats = standardize(x["train"], x["val"], x["test"])
        weights = class_weights(y["train"], 3) if self._config().training.class_weighting else None
        first = self.series[0].features
        assert first is not None
        self.prepared = PreparedArrays(
            train=(x_train, y["train"]),
            val=(x_val, y["val"]),
            test=(x_test, y["test"]),
            feature_names=list(first.names),
            task="classification",
            class_names=list(labelling.CLASS_NAMES),
            class_weights=None if weights is None else [float(w) for w in weights],
            normalization=stats,
        )
        return "train/val/test = {}/{}/{} rows".format(*(len(y[k]) for k in ("train", "val", "test")))

    def _label_horizon(self) -> int:
        """Rows dropped at each split boundary so no training label looks into validation or test.

        A forward-return label reads ``horizon`` candles ahead; a zigzag label reads up to the next
        pivot, of no fixed distance, so it gets no gap (its leak is at most one swing per boundary).
        """
        spec = self._config().labels
        return spec.horizon if isinstance(spec, ForwardReturnLabels) else 0

    def artifact(
        self,
        module: TrainableModule,
        fit: FitResult,
        test_metrics: dict[str, Any],
        importance: dict[str, float],
    ) -> ModelArtifact:
        config = self._config()
        name = "+".join(self.request.symbols) + "_" + "+".join(self.request.timeframes)
        extra = {"strategy": config.model_dump(mode="json"), "strategy_yaml": self.request.strategy_yaml}
        return self.build_artifact(config.name, name, module, fit, test_metrics, importance, extra)
