"""Strategy files and candle CSVs on local folders, seen through trainkit's strategy workload."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

from backend.errors import StrategyNotFoundError
from shared.trainkit.errors import DataError, DataNotFoundError
from shared.trainkit.workloads.strategy.schema import list_strategies, parse_strategy

STRATEGY_SUFFIXES = (".yaml", ".yml")
_FILE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StrategyFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def list_strategies(self) -> list[dict[str, Any]]:
        """Each strategy with its path relative to the strategies folder (no server paths)."""
        items = []
        for info in list_strategies(self.root):
            item = info.as_dict()
            item["path"] = _relative(Path(info.path), self.root)
            if item.get("error"):
                item["error"] = _without_root(str(item["error"]), self.root, "strategies")
            items.append(item)
        return items

    def read_text(self, name: str) -> str:
        for suffix in STRATEGY_SUFFIXES:
            path = self.root / f"{name}{suffix}"
            if path.is_file():
                return path.read_text(encoding="utf-8")
        for info in list_strategies(self.root):
            if info.name == name:
                return Path(info.path).read_text(encoding="utf-8")
        known = ", ".join(sorted(i.name for i in list_strategies(self.root))) or "none"
        raise StrategyNotFoundError(
            f"no strategy named {name!r} in the strategies folder; known strategies: {known}",
            field="strategy",
            name=name,
        )

    def validate(self, text: str) -> dict[str, Any]:
        config = parse_strategy(text, source="strategy_yaml")
        return {
            "name": config.name,
            "description": config.description,
            "indicators": [spec.id for spec in config.indicators],
            "features": sorted(config.fuzzy_sets),
        }


class CandleFiles:
    """``{data_dir}/{SYMBOL}_{TIMEFRAME}.csv``; uploads are validated then replaced atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list_datasets(self) -> list[dict[str, Any]]:
        from shared.trainkit.workloads.strategy.candles import list_datasets

        return [
            {**info.as_dict(), "path": _relative(info.path, self.root)} for info in list_datasets(self.root)
        ]

    def store(self, symbol: str, timeframe: str, content: bytes) -> dict[str, Any]:
        """Validate and store; the answer describes the stored file as the listing does."""
        from shared.trainkit.workloads.strategy.candles import candle_path, validate_candle_csv

        frame = validate_candle_csv(content, f"{symbol}_{timeframe}.csv")
        target = candle_path(self.root, symbol, timeframe)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        temp.write_bytes(content)
        os.replace(temp, target)
        return {
            "symbol": symbol,
            "timeframe": timeframe,
            "rows": len(frame),
            "start": frame.index[0].to_pydatetime().isoformat() if len(frame) else None,
            "end": frame.index[-1].to_pydatetime().isoformat() if len(frame) else None,
            "path": _relative(target, self.root),
            "size_bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }

    def path_of(self, symbol: str, timeframe: str) -> Path:
        from shared.trainkit.workloads.strategy.candles import candle_path

        path = candle_path(self.root, symbol, timeframe)
        if not path.is_file():
            raise DataNotFoundError(
                f"no candle data for {symbol} {timeframe} (looked for {path.name}); "
                "upload it with POST /api/v1/data",
                symbol=symbol,
                timeframe=timeframe,
            )
        return path

    def file_path(self, name: str) -> Path:
        return data_file(self.root, name)

    def write_samples(self) -> list[str]:
        """Generate the samples aside, then move in only those whose file is missing: an uploaded
        dataset of the same name is never overwritten."""
        from shared.trainkit.workloads.strategy.sample_data import write_sample_data

        self.root.mkdir(parents=True, exist_ok=True)
        written = []
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".samples-") as scratch:
            for sample in write_sample_data(Path(scratch)):
                target = self.root / sample.name
                if not target.exists():
                    os.replace(sample, target)
                    written.append(target.name)
        return written


def data_file(root: Path, name: str) -> Path:
    """``root/name`` (``.csv`` may be omitted) for a relative name of safe parts; never outside root."""
    parts = name.split("/")
    if not name or len(name) > 255 or not all(_FILE_PART.match(part) for part in parts):
        raise DataError(
            f"data file name {name[:100]!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(folders separated by '/'), each part starting with a letter or digit",
            field="dataset",
        )
    path = root.joinpath(*parts)
    if not path.is_file() and not path.suffix and path.with_suffix(".csv").is_file():
        path = path.with_suffix(".csv")
    if not path.is_file() or not path.resolve().is_relative_to(root.resolve()):
        raise DataNotFoundError(
            f"no data file {name!r} in the data folder; upload it or list the data with GET /api/v1/data",
            file=name,
        )
    return path


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def _without_root(text: str, root: Path, label: str) -> str:
    for spelling in (str(root.resolve()), str(root)):
        text = text.replace(spelling, label)
    return text
