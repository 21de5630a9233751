"""The check every generator runs on its latent input before using it."""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn


def check_latent(z: Any, net: nn.Module, shape: str) -> None:
    """Raise a TypeError naming the problem unless ``z`` is a tensor of the dtype of ``net``'s weights.

    Without it a float64 ``z`` (e.g. from numpy) fails deep inside the first layer with a raw dtype
    error; the shape is checked by each generator, which knows what it expects (``shape``, for the message).
    """
    name = type(net).__name__
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} expects z as a tensor of shape {shape}, got {type(z).__name__}")
    weight = next(net.parameters(), None)
    if weight is not None and z.dtype != weight.dtype:
        raise TypeError(f"{name} got z of dtype {z.dtype} but its weights are {weight.dtype}: draw z with "
                        f"torch.randn (float32 by default) or convert it with z.to({weight.dtype})")
