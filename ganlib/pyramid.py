"""Gaussian and Laplacian image pyramids (Burt & Adelson 1983), as LapGAN uses them (Denton et al. 2015, Sec. 3).

With d(.) a 2x down-sampling and u(.) a 2x up-sampling, the Gaussian pyramid is I_0 = I, I_{k+1} = d(I_k)
and the Laplacian pyramid stores the band-pass residuals h_k = I_k - u(I_{k+1}) plus the coarsest image
I_K. Reconstruction runs the recursion backwards, I_k = u(I_{k+1}) + h_k, so it is exact whatever d and u
are (up to float rounding of one add and one subtract). We use 2x2 average pooling for d and bilinear
interpolation for u, as LapGAN's CIFAR code does (``image.scale`` down and back up).
"""
from __future__ import annotations

from typing import List

import torch.nn.functional as F
from torch import Tensor


def downsample(x: Tensor) -> Tensor:
    """d(.): 2x2 average pooling, (N, C, H, W) -> (N, C, H/2, W/2)."""
    _check_images(x)
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"cannot halve a {x.shape[-2]}x{x.shape[-1]} image; use even sizes (e.g. 32x32)")
    return F.avg_pool2d(x, 2)


def upsample(x: Tensor) -> Tensor:
    """u(.): 2x bilinear up-sampling (half-pixel centres), (N, C, H, W) -> (N, C, 2H, 2W)."""
    _check_images(x)
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def gaussian_pyramid(x: Tensor, levels: int) -> List[Tensor]:
    """[I_0, I_1, ..., I_{levels-1}], finest first; each level half the size of the one before."""
    _check_levels(x, levels)
    pyramid = [x]
    for _ in range(levels - 1):
        pyramid.append(downsample(pyramid[-1]))
    return pyramid


def laplacian_pyramid(x: Tensor, levels: int) -> List[Tensor]:
    """[h_0, h_1, ..., h_{levels-2}, I_{levels-1}]: residuals finest first, then the coarsest image.

    ``levels=3`` on 32x32 images gives residuals at 32 and 16 and an 8x8 image, LapGAN's CIFAR setup.
    """
    gauss = gaussian_pyramid(x, levels)
    residuals = [fine - upsample(coarse) for fine, coarse in zip(gauss[:-1], gauss[1:])]
    return residuals + [gauss[-1]]


def reconstruct(pyramid: List[Tensor]) -> Tensor:
    """Invert ``laplacian_pyramid``: I_k = u(I_{k+1}) + h_k from the coarsest image up."""
    if not pyramid:
        raise ValueError("reconstruct needs a non-empty pyramid [h_0, ..., I_K]")
    image = pyramid[-1]
    for residual in reversed(pyramid[:-1]):
        coarse = upsample(image)
        if coarse.shape != residual.shape:
            raise ValueError(f"pyramid levels do not fit: up-sampled {tuple(coarse.shape)} vs residual "
                             f"{tuple(residual.shape)}; pass the list laplacian_pyramid returned, finest first")
        image = coarse + residual
    return image


def _check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(x.shape)}")


def _check_levels(x: Tensor, levels: int) -> None:
    _check_images(x)
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive int, got {levels!r}")
    side = min(x.shape[-2:])
    if side % (2 ** (levels - 1)):
        raise ValueError(f"a {x.shape[-2]}x{x.shape[-1]} image cannot be halved {levels - 1} times; "
                         f"use fewer levels or a size divisible by {2 ** (levels - 1)}")


def power_spectrum(images: Tensor) -> Tensor:
    """Mean 2-D power spectrum |FFT|^2 of images (N, C, H, W) after removing each image's mean,
    averaged over images and channels, zero frequency centred: (H, W)."""
    import torch

    _check_images(images)
    x = images.detach().double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2).mean(dim=(0, 1))
    return torch.fft.fftshift(power).float()


def nyquist_fraction(images: Tensor) -> float:
    """Share of the (mean-removed) power at the highest frequency of either axis: the row or column of the
    spectrum at f = 1/2 cycle per pixel. A one-pixel checkerboard puts all its power there; a 2x
    nearest/bilinear up-sampling of anything puts (almost) none there."""
    power = power_spectrum(images)
    h, w = power.shape
    if h % 2 or w % 2:
        raise ValueError(f"nyquist_fraction needs even sizes, got {h}x{w}")
    nyq = power[0, :].sum() + power[:, 0].sum() - power[0, 0]  # after fftshift, index 0 holds f = -1/2
    return float(nyq / power.sum().clamp_min(1e-30))
