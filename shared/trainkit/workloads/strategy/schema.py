"""A strategy file: YAML validated into :class:`StrategyConfig` (every section ``extra="forbid"``).

Errors come back as one :class:`ConfigError` naming the source, the field path
(``fuzzy_sets.rsi_14.oversold.parameters``), the YAML line when known, and how to fix it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.trainkit.errors import ConfigError
from shared.trainkit.storage.names import validate_component
from shared.trainkit.workloads.strategy.config_errors import (
    FieldPathError,
    parse_yaml_model,
    read_config_file,
)
from shared.trainkit.workloads.strategy.indicators import CATALOG, output_ids

#: What the model store accepts as a folder name (capped at 64 here), minus '..' which it also refuses:
#: a strategy's name becomes ``models/{name}/``, so a name the store cannot keep fails at parse time.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
MAX_NAME_LENGTH = 64
IndicatorName = Literal["sma", "ema", "rsi", "macd", "bbands", "atr", "roc"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndicatorSpec(_Section):
    """``{name: rsi, id: rsi_14, params: {period: 14}}``; ``id`` defaults to name + parameter values."""

    name: IndicatorName
    id: str = Field("", pattern=r"^$|^[A-Za-z][A-Za-z0-9_]{0,63}$")
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> IndicatorSpec:
        definition = CATALOG[self.name]
        for key, value in self.params.items():
            param = definition.params.get(key)
            if param is None:
                known = ", ".join(definition.params)
                raise FieldPathError(
                    ("params", key), f"unknown parameter for {self.name}; use one of: {known}"
                )
            if param.integer and value != int(value):
                raise FieldPathError(("params", key), f"must be a whole number, got {value}")
            if not param.minimum <= value <= param.maximum:
                raise FieldPathError(("params", key), f"must be from {param.minimum:g} to {param.maximum:g}")
        resolved = self.resolved_params
        if self.name == "macd" and resolved["fast"] >= resolved["slow"]:
            raise FieldPathError(("params", "fast"), "fast period must be shorter than slow period")
        if not self.id:
            suffix = "_".join(f"{v:g}".replace(".", "p") for v in resolved.values())
            object.__setattr__(self, "id", f"{self.name}_{suffix}")
        return self

    @property
    def resolved_params(self) -> dict[str, float]:
        """Every parameter of the indicator: the given ones, defaults for the rest, in catalogue order."""
        return {k: self.params.get(k, p.default) for k, p in CATALOG[self.name].params.items()}

    @property
    def output_ids(self) -> list[str]:
        return output_ids(self.name, self.id)


class FuzzySet(_Section):
    """A membership function: triangular ``[a, b, c]`` or trapezoidal ``[a, b, c, d]``, ascending."""

    type: Literal["triangular", "trapezoidal"]
    parameters: list[float]

    @model_validator(mode="after")
    def _shape(self) -> FuzzySet:
        want = 3 if self.type == "triangular" else 4
        p = self.parameters
        if len(p) != want:
            raise FieldPathError(
                ("parameters",), f"a {self.type} set needs exactly {want} numbers, got {len(p)}"
            )
        if not all(math.isfinite(v) for v in p):
            raise FieldPathError(("parameters",), "numbers must be finite (use a wide bound for a shoulder)")
        if any(b < a for a, b in itertools.pairwise(p)) or p[0] == p[-1]:
            raise FieldPathError(
                ("parameters",), f"must be ascending with first < last, e.g. [20, 30, 40]; got {list(p)}"
            )
        return self


class ModelSpec(_Section):
    type: Literal["mlp"] = "mlp"
    hidden_layers: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [64, 32], max_length=8
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    activation: Literal["relu", "gelu", "tanh"] = "relu"


class ZigzagLabels(_Section):
    """BUY/SELL while at least ``threshold`` (a fraction: 0.02 = 2 %) of the current swing remains."""

    method: Literal["zigzag"]
    threshold: float = Field(0.02, gt=0.0, lt=1.0)


class ForwardReturnLabels(_Section):
    """BUY if close rises by ``buy_threshold`` within ``horizon`` candles, SELL if it falls past
    ``sell_threshold`` (negative), HOLD otherwise (fractions: 0.01 = 1 %)."""

    method: Literal["forward_return"]
    horizon: int = Field(12, ge=1, le=10_000)
    buy_threshold: float = Field(0.01, gt=0.0, lt=10.0)
    sell_threshold: float = Field(-0.01, gt=-1.0, lt=0.0)


LabelSpec = Annotated[ZigzagLabels | ForwardReturnLabels, Field(discriminator="method")]


class SplitSpec(_Section):
    train: float = Field(0.7, gt=0.0, lt=1.0)
    val: float = Field(0.15, gt=0.0, lt=1.0)
    test: float = Field(0.15, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


class TrainingSpec(_Section):
    epochs: int = Field(50, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0)
    early_stopping_patience: int = Field(10, ge=0, le=10_000)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    class_weighting: bool = True
    seed: int = Field(42, ge=0, le=2**32 - 1)


class StrategyConfig(_Section):
    name: str = Field(..., max_length=MAX_NAME_LENGTH)
    description: str = ""
    indicators: list[IndicatorSpec] = Field(..., min_length=1)
    fuzzy_sets: dict[str, dict[str, FuzzySet]] = Field(..., min_length=1)
    model: ModelSpec = Field(default_factory=ModelSpec)
    labels: LabelSpec
    split: SplitSpec = Field(default_factory=SplitSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("name")
    @classmethod
    def _storable_name(cls, value: str) -> str:
        """The model store's own rule (:func:`validate_component`), so the two can never disagree."""
        try:
            return validate_component(value, "name")
        except ConfigError as exc:
            raise ValueError(f"{exc.message}; trained models are stored under this name") from exc

    @field_validator("fuzzy_sets")
    @classmethod
    def _sets_not_empty(cls, value: dict[str, dict[str, FuzzySet]]) -> dict[str, dict[str, FuzzySet]]:
        for key, sets in value.items():
            if not sets:
                raise FieldPathError((key,), "declare at least one set, e.g. low: {type: triangular, ...}")
        return value

    @model_validator(mode="after")
    def _references(self) -> StrategyConfig:
        seen: dict[str, int] = {}
        for i, spec in enumerate(self.indicators):
            if spec.id in seen:
                raise FieldPathError(
                    ("indicators", i, "id"), f"duplicate id {spec.id!r}; give one an explicit id"
                )
            seen[spec.id] = i
        known = self.input_ids
        for key in self.fuzzy_sets:
            if key not in known:
                raise FieldPathError(
                    ("fuzzy_sets", key),
                    f"refers to no declared indicator output; declare it under indicators or use one of: "
                    f"{', '.join(known)}",
                )
        return self

    @property
    def input_ids(self) -> list[str]:
        """Every indicator output a fuzzy set may refer to."""
        return [o for spec in self.indicators for o in spec.output_ids]


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    path: str
    description: str
    valid: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_strategy(text: str, source: str = "<inline>") -> StrategyConfig:
    """Parse and validate strategy YAML; any problem raises :class:`ConfigError` naming the field."""
    return parse_yaml_model(
        StrategyConfig, text, source=source, what="strategy", shape="name, indicators, fuzzy_sets and labels"
    )


def load_strategy_file(path: Path) -> StrategyConfig:
    return parse_strategy(read_config_file(path, "strategy"), source=str(path))


def list_strategies(strategies_dir: Path) -> list[StrategyInfo]:
    """Every ``*.yaml`` / ``*.yml`` in the folder, valid or not (invalid ones carry their error)."""
    directory = Path(strategies_dir)
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    infos = []
    for path in files:
        try:
            config = load_strategy_file(path)
        except ConfigError as exc:
            infos.append(StrategyInfo(path.stem, str(path), "", False, exc.message))
        else:
            infos.append(StrategyInfo(config.name, str(path), config.description, True))
    return infos
