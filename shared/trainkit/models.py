"""The built-in model: an MLP for classification or regression, rebuildable from its stored spec."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from shared.trainkit.errors import ConfigError
from shared.trainkit.seeding import GeneratorDropout
from shared.trainkit.spi import Batch, TrainableModule, TrainStepOutput, ValStepOutput

Task = Literal["classification", "regression"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class MLPSpec:
    """Everything needed to rebuild the network; stored in ``config.json`` beside the weights."""

    input_dim: int
    output_dim: int
    hidden_layers: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    activation: str = "relu"
    task: Task = "classification"
    model_class: str = "MLP"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MLP(TrainableModule):
    """Feed-forward network; cross-entropy (optionally class-weighted) or mean-squared-error loss.

    ``generator`` (optional) draws the initial weights instead of the process-wide RNG; dropout draws
    from the fit's generator (see :mod:`~shared.trainkit.seeding`). Both keep parallel fits reproducible.
    """

    def __init__(
        self,
        spec: MLPSpec,
        class_weights: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if spec.activation not in _ACTIVATIONS:
            raise ConfigError(
                f"model.activation must be one of {sorted(_ACTIVATIONS)}, got {spec.activation!r}",
                field="model.activation",
            )
        self.spec = spec
        layers: list[nn.Module] = []
        width = spec.input_dim
        for hidden in spec.hidden_layers:
            layers += [
                nn.Linear(width, hidden),
                _ACTIVATIONS[spec.activation](),
                GeneratorDropout(spec.dropout),
            ]
            width = hidden
        layers.append(nn.Linear(width, spec.output_dim))
        self.net = nn.Sequential(*layers)
        if generator is not None:
            self.reset_parameters(generator)
        # Class weights shape the loss only: not persistent, so stored weights hold the network alone.
        self.class_weights: torch.Tensor | None
        self.register_buffer("class_weights", class_weights, persistent=False)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw every layer's initial weights from ``generator`` as ``nn.Linear`` draws them."""
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    def loss_fn(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.spec.task == "classification":
            return nn.functional.cross_entropy(out, target, weight=self.class_weights)
        return nn.functional.mse_loss(out, target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out.squeeze(-1) if self.spec.task == "regression" else out

    def training_step(self, batch: Batch, batch_idx: int) -> TrainStepOutput:
        x, y = batch
        return TrainStepOutput(loss=self.loss_fn(self(x), y))

    def validation_step(self, batch: Batch, batch_idx: int) -> ValStepOutput:
        x, y = batch
        out = self(x)
        correct = int((out.argmax(dim=1) == y).sum()) if self.spec.task == "classification" else None
        return ValStepOutput(loss=self.loss_fn(out, y), size=len(y), correct=correct)


def build_model(
    spec: dict[str, Any] | MLPSpec,
    class_weights: Sequence[float] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> MLP:
    """Rebuild a model from the spec stored in ``config.json`` (used to validate received weights)."""
    if isinstance(spec, dict):
        known = {k: v for k, v in spec.items() if k in MLPSpec.__dataclass_fields__}
        try:
            spec = MLPSpec(**known)
        except TypeError as exc:
            raise ConfigError(f"model spec is incomplete: {exc}", field="model") from exc
    weights = torch.tensor(list(class_weights), dtype=torch.float32) if class_weights is not None else None
    return MLP(spec, weights, generator=generator)
