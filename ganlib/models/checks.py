"""The checks every model runs on what it is given, so a wrong input fails at the door with one clear message.

Without them a float64 ``z`` (e.g. from numpy), a missing dimension or grey images fed to an RGB
discriminator fail deep inside the first layer with a raw shape or dtype error.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn


def check_latent(z: Any, net: nn.Module, z_dim: int, spatial: bool = False) -> None:
    """Raise unless ``z`` is a tensor (N, z_dim) of the dtype of ``net``'s weights; ``spatial`` also allows
    (N, z_dim, 1, 1), DCGAN's input to its first transposed convolution."""
    name = type(net).__name__
    shape = f"(N, {z_dim})" + (f" or (N, {z_dim}, 1, 1)" if spatial else "")
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} expects z as a tensor of shape {shape}, got {type(z).__name__}")
    weight = next(net.parameters(), None)
    if weight is not None and z.dtype != weight.dtype:
        raise TypeError(f"{name} got z of dtype {z.dtype} but its weights are {weight.dtype}: draw z with "
                        f"torch.randn (float32 by default) or convert it with z.to({weight.dtype})")
    if tuple(z.shape[1:]) not in [(z_dim,)] + ([(z_dim, 1, 1)] if spatial else []):
        raise ValueError(f"{name} expects z of shape {shape}, got {tuple(z.shape)}")


def check_images(x: Tensor, net: nn.Module, channels: int, size: int) -> None:
    """Raise unless ``x`` is a batch of images (N, channels, size, size), with a hint on what to change."""
    if x.dim() == 4 and tuple(x.shape[1:]) == (channels, size, size):
        return
    if x.dim() != 4:
        hint = "add the missing batch or channel dimension"
    elif {x.shape[-1], size} == {28, 32}:  # the usual mix-up: MNIST is 28x28, power-of-two models want 32x32
        hint = f"load MNIST at the model's size with ganlib.data.mnist(size={size})"
    else:
        hint = (f"the data has {x.shape[1]} channels at {x.shape[2]}x{x.shape[3]}: convert/resize it, "
                "or build the model to match")
    raise ValueError(f"{type(net).__name__} expects images of shape (N, {channels}, {size}, {size}), "
                     f"got {tuple(x.shape)}: {hint}")


def check_img_channels(img_channels: int) -> None:
    """Image models draw grey or RGB pictures."""
    if img_channels not in (1, 3):
        raise ValueError(f"img_channels must be 1 (grey) or 3 (RGB), got {img_channels!r}")
