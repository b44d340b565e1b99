"""Strategy files and candle CSVs on local folders, seen through trainkit's strategy workload."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from backend.errors import StrategyNotFoundError
from shared.trainkit.errors import DataNotFoundError
from shared.trainkit.workloads.strategy.schema import list_strategies, parse_strategy

STRATEGY_SUFFIXES = (".yaml", ".yml")


class StrategyFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def list_strategies(self) -> list[dict[str, Any]]:
        return [info.as_dict() for info in list_strategies(self.root)]

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
            f"no strategy named {name!r} in {self.root}; known strategies: {known}",
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

        return [_as_dict(info) for info in list_datasets(self.root)]

    def store(self, symbol: str, timeframe: str, content: bytes) -> dict[str, Any]:
        from shared.trainkit.workloads.strategy.candles import candle_path, validate_candle_csv

        frame = validate_candle_csv(content, f"{symbol}_{timeframe}.csv")
        target = candle_path(self.root, symbol, timeframe)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        temp.write_bytes(content)
        os.replace(temp, target)
        return {"symbol": symbol, "timeframe": timeframe, "rows": len(frame), "path": str(target)}

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

    def write_samples(self) -> list[str]:
        from shared.trainkit.workloads.strategy.sample_data import write_sample_data

        return [str(p) for p in write_sample_data(self.root)]


def _as_dict(info: Any) -> dict[str, Any]:
    if hasattr(info, "as_dict"):
        return dict(info.as_dict())
    return dict(vars(info))
