"""Building blocks shared by the progressive and style-based generators (Karras et al. 2018, 2019).

* Equalized learning rate (PGGAN Sec. 4.1): weights are stored as N(0, 1) and multiplied at run time
  by gain / sqrt(fan_in), so Adam's per-parameter step sizes are the same for every layer.
  ``lr_mul`` (StyleGAN's mapping network uses 0.01) scales both the init and the run-time multiplier.
* Pixel norm (PGGAN Sec. 4.2): each pixel's feature vector divided by its RMS over channels.
* Minibatch standard deviation (PGGAN Sec. 3): one extra feature map holding the average std over
  groups of samples, so D can see a lack of variety.
* Blur with the [1, 2, 1] binomial filter (StyleGAN Sec. 2, after Zhang 2019) for up/down-sampling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class EqualizedLinear(nn.Module):
    """Linear layer with the equalized learning-rate trick: y = x W^T * (gain*lr_mul/sqrt(fan_in)) + b*lr_mul."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = math.sqrt(2),
                 lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.weight_scale = gain * lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.weight_scale, bias)


class EqualizedConv2d(nn.Module):
    """Conv2d with equalized learning rate; 'same' padding for odd kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """x / sqrt(mean_c(x^2) + eps): unit RMS over channels at every pixel (PGGAN eq. in Sec. 4.2)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the std over each group of ``group_size`` samples, averaged over C, H, W.

    Follows the official TF code: samples are grouped as x.reshape(G, N/G, ...), i.e. sample i belongs
    to group i mod (N/G); the batch size must be divisible by the group size (it falls back to the
    whole batch when the batch is smaller than the group).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size, self.eps = group_size, eps

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:
            raise ValueError(f"MinibatchStdDev needs a batch divisible by its group size {g}, got {n}; "
                             "use a batch size that is a multiple of 4")
        y = x.reshape(g, n // g, c, h, w)
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(self.eps).sqrt()  # std over the group: (N/G, C, H, W)
        y = y.mean(dim=(1, 2, 3)).view(n // g, 1, 1, 1).repeat(g, 1, h, w)  # one value per group, tiled
        return torch.cat([x, y], dim=1)


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, zero-padded so the size is kept."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.kernel.expand(c, 1, 3, 3).to(x.dtype), padding=1, groups=c)


def upsample2x(x: Tensor) -> Tensor:
    """Nearest-neighbour 2x upsampling (PGGAN's 'upsample + conv' instead of a transposed conv)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample2x(x: Tensor) -> Tensor:
    """2x2 average pooling."""
    return F.avg_pool2d(x, 2)
