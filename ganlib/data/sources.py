"""Batch sources the training loop draws from, indexed by a counter so a resumed run sees the same batches.

``source.batch(i)`` is a pure function of (seed, i): the i-th batch the run ever draws. That is what
makes checkpoint/resume exact without saving iterator state. Data already lives on the device, so a
small dataset never pays for a DataLoader per step.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor

Batch = Union[Tensor, Tuple[Tensor, Tensor]]


class SamplerSource:
    """Fresh samples every batch from ``sample(n, generator)`` (e.g. a toy mixture), moved to ``device``."""

    def __init__(self, sample: Callable[..., Tensor], batch_size: int, seed: int = 0,
                 device: Optional[torch.device] = None) -> None:
        _check_batch_size(batch_size)
        self.sample, self.batch_size, self.seed = sample, batch_size, seed
        self.device = device or torch.device("cpu")

    def batch(self, index: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return self.sample(self.batch_size, generator=gen).to(self.device)


class TensorSource:
    """Shuffled minibatches of device-resident tensors, a new permutation each epoch, drop-last.

    ``batch(i)`` is ``x`` or ``(x, y)`` when labels are given.
    """

    def __init__(self, x: Tensor, y: Optional[Tensor] = None, batch_size: int = 64, seed: int = 0,
                 device: Optional[torch.device] = None) -> None:
        _check_batch_size(batch_size)
        if len(x) < batch_size:
            raise ValueError(f"batch_size={batch_size} is larger than the dataset ({len(x)} items); lower it")
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels; they must match one to one")
        self.device = device or x.device
        self.x = x.to(self.device)
        self.y = None if y is None else y.to(self.device)
        self.batch_size, self.seed = batch_size, seed
        self.per_epoch = len(x) // batch_size
        self._epoch, self._perm = -1, None

    def batch(self, index: int) -> Batch:
        epoch, within = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.x), generator=gen).to(self.device)
            self._epoch = epoch
        take = self._perm[within * self.batch_size:(within + 1) * self.batch_size]
        return self.x[take] if self.y is None else (self.x[take], self.y[take])


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
