"""In-memory datasets as a DataModule: shuffled index slices, far cheaper per batch than a DataLoader."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from shared.trainkit.spi import Batch, DataModule


class TensorBatches:
    """Iterates ``(x, y)`` batches of two aligned tensors; reshuffles on every pass when ``shuffle``."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool, seed: int
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def state_dict(self) -> dict[str, Any]:
        """The shuffling state, so a resumed fit draws the same orders as one that never stopped."""
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._generator.set_state(state["generator"])

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator)
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        for start in range(0, n, self.batch_size):
            yield x[start : start + self.batch_size], y[start : start + self.batch_size]


class ArrayDataModule(DataModule):
    """Train/val/test splits held as numpy arrays (features float32; targets int64 or float32)."""

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None,
        test: tuple[np.ndarray, np.ndarray] | None,
        *,
        seed: int = 0,
    ) -> None:
        self._train = _tensors(train)
        self._val = _tensors(val) if val is not None and len(val[0]) else None
        self._test = _tensors(test) if test is not None and len(test[0]) else None
        self._seed = seed

    def train_dataloader(self, batch_size: int) -> Iterable[Batch]:
        return TensorBatches(*self._train, batch_size, shuffle=True, seed=self._seed)

    def val_dataloader(self, batch_size: int) -> Iterable[Batch] | None:
        return None if self._val is None else TensorBatches(*self._val, batch_size, shuffle=False, seed=0)

    def test_dataloader(self, batch_size: int) -> Iterable[Batch] | None:
        return None if self._test is None else TensorBatches(*self._test, batch_size, shuffle=False, seed=0)


def _tensors(pair: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = pair
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(
        np.ascontiguousarray(y)
    )
