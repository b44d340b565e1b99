"""Hand-written fakes of the backend's ports (no mock.patch of our own modules)."""

from __future__ import annotations

import io
import logging
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from backend.errors import StrategyNotFoundError
from shared.contracts.training import ProgressUpdate, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import ConfigError, DataError, DataNotFoundError, ExportError, ModelNotFoundError
from shared.trainkit.executor.types import ModelRef, ProgressCallback, TrainingResult

logger = logging.getLogger("shared.trainkit.fake_executor")

STRATEGY_YAML = "name: trend\ndescription: a test strategy\n"


class FixedClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 1, 5, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self.current += timedelta(milliseconds=1)
            return self.current


@dataclass
class FakeEngine:
    """Trains nothing: reports ``epochs`` epochs of progress, checking the cancel token every "batch".

    ``gate``, when set, makes every run wait for it before training (so tests control timing);
    ``started`` is set once a run begins; ``runs`` records the run names in start order.
    """

    datasets: set[tuple[str, str]] = field(default_factory=lambda: {("EURUSD", "1h"), ("BTCUSD", "1d")})
    batches_per_epoch: int = 3
    gate: threading.Event | None = None
    started: threading.Event = field(default_factory=threading.Event)
    runs: list[str] = field(default_factory=list)
    #: ``resume`` of each run, in start order.
    resumed: list[bool] = field(default_factory=list)
    fail_with: Exception | None = None
    version: int = 0
    #: Reported once, as the real executor does, when training starts (before the gate).
    device: str = "cpu"

    def validate(self, request: TrainingRequest) -> list[str]:
        for symbol in request.symbols:
            for timeframe in request.timeframes:
                if (symbol, timeframe) not in self.datasets:
                    raise DataNotFoundError(
                        f"no candle data for {symbol} {timeframe}", symbol=symbol, timeframe=timeframe
                    )
        return ["fake warning"] if request.overrides.epochs == 7 else []

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
        resume: bool = False,
    ) -> TrainingResult:
        self.runs.append(run_name or "")
        self.resumed.append(resume)
        logger.info("fake training of %s started", request.strategy_name)
        progress(ProgressUpdate(percentage=1.0, phase="training", extra={"device": self.device}))
        self.started.set()
        if self.gate is not None and not self.gate.wait(timeout=20):
            raise RuntimeError("test gate never opened")
        if self.fail_with is not None:
            raise self.fail_with
        epochs = request.overrides.epochs or 3
        history = []
        for epoch in range(epochs):
            for _ in range(self.batches_per_epoch):
                cancel.raise_if_cancelled("batch")
                if self.gate is not None:
                    cancel.wait(0.001)
            row = {
                "epoch": epoch,
                "train_loss": 1.0 / (epoch + 1),
                "val_loss": 1.2 / (epoch + 1),
                "lr": 0.001,
            }
            history.append(row)
            progress(
                ProgressUpdate(
                    percentage=100.0 * (epoch + 1) / (epochs + 1),
                    phase="training",
                    message=f"epoch {epoch + 1}/{epochs}",
                    epoch=epoch + 1,
                    total_epochs=epochs,
                    metrics={"train_loss": row["train_loss"]},
                    extra={"epoch_metrics": row},
                )
            )
        self.version += 1
        ref = ModelRef(request.strategy_name or "s", "EURUSD_1h", self.version, f"/models/x_v{self.version}")
        logger.info("fake training finished")
        return TrainingResult(
            model=ref,
            device=self.device,
            test_metrics={"accuracy": 0.5},
            history=history,
            best_epoch=epochs - 1,
            best_val_loss=history[-1]["val_loss"],
            epochs_trained=epochs,
            stop_reason="max_epochs",
            feature_importance={},
            duration_s=0.01,
        )


class FakeStrategies:
    def __init__(self, files: dict[str, str] | None = None) -> None:
        self.files = files if files is not None else {"trend": STRATEGY_YAML}

    def list_strategies(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "path": f"strategies/{n}.yaml", "description": "", "valid": True} for n in self.files
        ]

    def read_text(self, name: str) -> str:
        if name not in self.files:
            raise StrategyNotFoundError(f"no strategy named {name!r}", field="strategy", name=name)
        return self.files[name]

    def validate(self, text: str) -> dict[str, Any]:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"not YAML: {exc}", field="") from exc
        if not isinstance(data, dict) or "name" not in data:
            raise ConfigError("name is required", field="name")
        return {"name": data["name"]}


class FakeDatasets:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.samples_written = 0

    def list_datasets(self) -> list[dict[str, Any]]:
        items = []
        for path in sorted(self.root.glob("*.csv")):
            symbol, timeframe = path.stem.split("_", 1)
            rows = len(path.read_text().splitlines()) - 1
            items.append({"symbol": symbol, "timeframe": timeframe, "rows": rows, "path": str(path)})
        return items

    def store(self, symbol: str, timeframe: str, content: bytes) -> dict[str, Any]:
        lines = content.decode().splitlines()
        if not lines or lines[0].split(",")[:2] != ["timestamp", "open"]:
            raise DataError(f"{symbol}_{timeframe}.csv: first line must be the header", row=1)
        path = self.root / f"{symbol}_{timeframe}.csv"
        path.write_bytes(content)
        return {"rows": len(lines) - 1, "path": str(path)}

    def store_table(self, name: str, source: BinaryIO, *, max_bytes: int) -> dict[str, Any]:
        from backend.adapters.data_folder import DataFolder  # tables: the real rules on the same folder

        return DataFolder(self.root).store_table(name, source, max_bytes=max_bytes)

    def preview(self, name: str) -> dict[str, Any]:
        from backend.adapters.data_folder import DataFolder

        return DataFolder(self.root).preview(name)

    def path_of(self, symbol: str, timeframe: str) -> Path:
        path = self.root / f"{symbol}_{timeframe}.csv"
        if not path.is_file():
            raise DataNotFoundError(f"no candle data for {symbol} {timeframe}", symbol=symbol)
        return path

    def file_path(self, name: str) -> Path:
        from backend.adapters.catalogs import data_file  # pure path rules, no CSV parsing

        return data_file(self.root, name)

    def write_samples(self) -> list[str]:
        self.samples_written += 1
        path = self.root / "EURUSD_1h.csv"
        path.write_text("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00,1,2,0.5,1.5,100\n")
        return [str(path)]


class FakeModelStore:
    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], dict[int, dict[str, bytes]]] = {
            ("trend", "EURUSD_1h"): {1: {"model.pt": b"weights", "metrics.json": b'{"accuracy": 0.5}'}}
        }

    def list_models(self) -> list[dict[str, Any]]:
        return [
            {"strategy": s, "name": n, "latest_version": max(v), "versions": len(v)}
            for (s, n), v in self.versions.items()
            if v
        ]

    def _get(self, strategy: str, name: str) -> dict[int, dict[str, bytes]]:
        if not self.versions.get((strategy, name)):
            raise ModelNotFoundError(f"no model {strategy}/{name}", strategy=strategy, name=name)
        return self.versions[(strategy, name)]

    def list_versions(self, strategy: str, name: str) -> list[dict[str, Any]]:
        return [
            {
                "strategy": strategy,
                "name": name,
                "version": v,
                "metrics": {"accuracy": 0.5},
                "files": sorted(f),
            }
            for v, f in sorted(self._get(strategy, name).items(), reverse=True)
        ]

    def archive(self, strategy: str, name: str, version: int) -> tuple[str, Iterator[bytes]]:
        files = self._get(strategy, name).get(version)
        if files is None:
            raise ModelNotFoundError(f"no version {version} of {strategy}/{name}", version=version)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for filename, data in files.items():
                archive.writestr(filename, data)
        return f"{strategy}-{name}_v{version}.zip", iter([buffer.getvalue()])

    def onnx(self, strategy: str, name: str, version: int) -> tuple[str, bytes]:
        files = self._get(strategy, name).get(version)
        if files is None:
            raise ModelNotFoundError(f"no version {version} of {strategy}/{name}", version=version)
        weights = files.get("model.safetensors", files.get("model.pt"))
        if weights is None:
            raise ExportError(
                f"{strategy}/{name} v{version} has no weights to export", reason="command_model"
            )
        return f"{strategy}-{name}_v{version}.onnx", b"onnx:" + weights

    def delete(self, strategy: str, name: str, version: int) -> None:
        versions = self._get(strategy, name)
        if version not in versions:
            raise ModelNotFoundError(f"no version {version} of {strategy}/{name}", version=version)
        del versions[version]
