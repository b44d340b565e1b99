"""Received weights, validated the way a user would load them: the model file's format (safetensors
with modelyard's header fields; an older host's ``model.pt`` checkpoint, always ``weights_only=True``) and then ``load_state_dict`` into the model rebuilt from its stored config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from backend.errors import ResultRejectedError
from shared.trainkit.checkpoint import config_hash
from shared.trainkit.errors import CheckpointError, ConfigError
from shared.trainkit.model_file import load_weights
from shared.trainkit.models import build_model

logger = logging.getLogger(__name__)


class CheckpointValidator:
    """Implements the ModelValidator port. The file is memory-mapped by ``load_weights``, so a large
    model costs its tensors once (torch memory), not another copy of its bytes."""

    def validate(self, model_file: Path, config: dict[str, Any]) -> None:
        raw_spec = config.get("model")
        spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
        try:
            checkpoint = load_weights(
                model_file,
                expected_model_class=spec.get("model_class"),
                expected_config_hash=config_hash(config),
            )
        except CheckpointError as exc:
            raise ResultRejectedError(f"the received model was refused: {exc.message}") from exc
        state = checkpoint.state_dict
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ResultRejectedError("the received model's state_dict holds values that are not tensors")
        if "input_dim" not in spec:
            # A plugin's model class lives in the user's package: the format checks above are all we do.
            logger.info("model class %s is not built in; checked the checkpoint format only", spec)
            return
        try:
            # Built on the meta device: names and shapes are all load_state_dict checks, and a real
            # build would initialise every weight first (about 0.2 s for a 45 MB model).
            with torch.device("meta"):
                module = build_model(spec)
            module.load_state_dict(state, strict=True, assign=True)
        except (ConfigError, RuntimeError) as exc:
            raise ResultRejectedError(
                f"the received weights do not fit the model described by config.json: {exc}"
            ) from exc
