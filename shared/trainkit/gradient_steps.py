"""One optimisation step as the trainer takes it: forward under autocast for mixed precision, backward
(scaled for fp16), gradient accumulation, clipping, then the optimizer step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from shared.trainkit.config import TrainerConfig
from shared.trainkit.spi import Batch

AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class GradientSteps:
    """Runs the steps of one fit at the resolved ``precision`` on ``device``."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, config: TrainerConfig, device: torch.device, precision: str
    ) -> None:
        self.optimizer = optimizer
        self.accumulate = config.accumulate_grad_batches
        self.clip = config.gradient_clip_val
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.autocast_dtype = AUTOCAST_DTYPES.get(precision)
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda") if precision == "16-mixed" else None
        self.pending = 0
        #: Optimizer steps taken (the trainer's ``global_step``; restored on resume).
        self.steps_taken = 0
        optimizer.zero_grad(set_to_none=True)

    def forward(self, step: Callable[[Batch, int], Any], batch: Batch, batch_idx: int) -> Any:
        if self.autocast_dtype is None:
            return step(batch, batch_idx)
        with torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype):
            return step(batch, batch_idx)

    def backward(self, loss: torch.Tensor, batch_idx: int, total_batches: int | None) -> None:
        if self.accumulate > 1:
            loss = loss / self.accumulate
        if self.scaler is not None:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        else:
            loss.backward()  # type: ignore[no-untyped-call]
        self.pending += 1
        last = total_batches is not None and batch_idx + 1 == total_batches
        if self.pending == self.accumulate or last:
            self.step()

    def flush(self) -> None:
        """Apply gradients still accumulated when a loader of unknown length ran out."""
        if self.pending:
            self.step()

    def step(self) -> None:
        if self.scaler is not None:
            if self.clip is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.pending = 0
        self.steps_taken += 1
