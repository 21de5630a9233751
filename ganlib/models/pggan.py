"""Progressive growing of GANs (Karras et al. 2018, "PGGAN"), small enough to grow 4 -> 32 on a CPU.

The ingredients, each with the paper section it comes from:

* growing (Sec. 2): every resolution block is allocated up front; ``level`` says which is on top
  (0 -> 4x4, 1 -> 8x8, ...). The images going in and out are always full size, as in the official
  code: G up-samples its current output to full size by nearest neighbour, D average-pools its
  input down to the current size (the stage and those helpers: ``ganlib.progressive``).
* fade-in (Sec. 2, Fig. 2): while a new block fades in, G outputs ``lerp(old, new, alpha)`` where
  ``old`` is the previous resolution's RGB up-sampled 2x and ``new`` the new block's RGB.
  **Convention: alpha = 0 is the old path only, alpha = 1 the new path only** (the official TF code's
  ``lod`` fraction; the GAN zoo uses the opposite). D mirrors it on the way down, and the reals are
  blended between the two resolutions with the same alpha (``ganlib.progressive.fade_reals``).
* equalized learning rate (Sec. 4.1), pixel norm after each conv of G and on the latent (Sec. 4.2),
  minibatch standard deviation with group 4 in D's last block (Sec. 3): ``ganlib.layers``.
* up-sample + conv instead of a transposed conv (``up="nearest"``; ``up="transposed"`` is there to
  show the checkerboard artefacts it avoids).

Training them is not this module's business: the schedule (``ProgressiveSchedule``, a hook that sets level
and alpha before every step and resets Adam at each phase change), the faded reals (``ProgressiveSource``)
and the paper's recipe -- WGAN-GP (lambda 10) + drift 0.001 E[D(real)^2] (Appendix A.1), Adam(lr 1e-3,
betas (0, 0.99)), EMA of G (``make_trainer``) -- live in ``ganlib.experiments.progressive``.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, downsample2x, upsample2x
from ganlib.models.checks import check_images, check_img_channels, check_latent
from ganlib.progressive import StageMixin, pool_to, to_full_size


def _resolutions(resolution: int) -> List[int]:
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4 (e.g. 32), got {resolution}")
    return [4 * 2**k for k in range(int(math.log2(resolution)) - 1)]


def _check_channels(channels: Sequence[int], n_levels: int) -> List[int]:
    channels = list(channels)
    if len(channels) != n_levels or any(int(c) < 1 for c in channels):
        raise ValueError(f"channels needs one positive width per resolution ({n_levels} for 4..{4 * 2**(n_levels-1)}), "
                         f"got {channels}")
    return channels


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class EqualizedConvTranspose2d(nn.Module):
    """4x4 stride-2 transposed conv with equalized LR: the DCGAN up-sampler, kept only for the ablation."""

    def __init__(self, in_channels: int, out_channels: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, 4, 4))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_scale = gain / math.sqrt(in_channels * 16)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight * self.weight_scale, self.bias, stride=2, padding=1)


class _GBlock(nn.Module):
    """Up-sample 2x, then two 3x3 convs, each followed by LeakyReLU(0.2) and pixel norm."""

    def __init__(self, in_ch: int, out_ch: int, up: str, pixel_norm: bool) -> None:
        super().__init__()
        self.up = EqualizedConvTranspose2d(in_ch, out_ch) if up == "transposed" else None
        self.conv1 = None if up == "transposed" else EqualizedConv2d(in_ch, out_ch, 3)
        self.conv2 = EqualizedConv2d(out_ch, out_ch, 3)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.up(x) if self.up is not None else self.conv1(upsample2x(x))
        x = self.norm(_lrelu(x))
        return self.norm(_lrelu(self.conv2(x)))


class _GFirst(nn.Module):
    """Latent -> 4x4: a dense layer (gain sqrt(2)/4, as the official code) and a 3x3 conv."""

    def __init__(self, z_dim: int, ch: int, pixel_norm: bool) -> None:
        super().__init__()
        self.ch = ch
        self.dense = EqualizedLinear(z_dim, ch * 16, gain=math.sqrt(2) / 4)
        self.conv = EqualizedConv2d(ch, ch, 3)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, z: Tensor) -> Tensor:
        x = self.norm(_lrelu(self.dense(z).view(-1, self.ch, 4, 4)))
        return self.norm(_lrelu(self.conv(x)))


class PGGANGenerator(StageMixin, nn.Module):
    """G: z -> images (N, img_channels, resolution, resolution), grown from 4x4.

    Args:
        z_dim: latent size (pixel-normalised before the first layer, Sec. 4.2).
        img_channels: 1 (MNIST) or 3 (shapes).
        resolution: final size, a power of two.
        channels: feature maps per resolution 4, 8, ..., resolution (the paper halves them going up).
        up: "nearest" (up-sample + conv, the paper) or "transposed" (4x4 stride-2 transposed conv).
        pixel_norm: turn pixel norm off for ablations.
    """

    def __init__(self, z_dim: int = 128, img_channels: int = 1, resolution: int = 32,
                 channels: Sequence[int] = (64, 64, 32, 16), up: str = "nearest", pixel_norm: bool = True) -> None:
        super().__init__()
        if up not in ("nearest", "transposed"):
            raise ValueError(f"up must be 'nearest' (up-sample + conv) or 'transposed', got {up!r}")
        check_img_channels(img_channels)
        self.resolutions = _resolutions(resolution)
        self.n_levels = len(self.resolutions)
        ch = _check_channels(channels, self.n_levels)
        self.z_dim, self.img_channels, self.resolution = z_dim, img_channels, resolution
        self.latent_norm = PixelNorm() if pixel_norm else nn.Identity()
        self.blocks = nn.ModuleList([_GFirst(z_dim, ch[0], pixel_norm)] +
                                    [_GBlock(ch[k - 1], ch[k], up, pixel_norm) for k in range(1, self.n_levels)])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, img_channels, 1, gain=1.0) for c in ch])
        self._init_stage()

    def forward(self, z: Tensor) -> Tensor:
        check_latent(z, self, self.z_dim)
        level, alpha = self.stage
        x = self.blocks[0](self.latent_norm(z))
        for block in self.blocks[1:level]:
            x = block(x)
        if level == 0:
            rgb = self.to_rgb[0](x)
        else:
            rgb = self.to_rgb[level](self.blocks[level](x))
            if alpha < 1.0:  # fade-in (Fig. 2b): the old resolution's RGB, up-sampled, blended out
                rgb = torch.lerp(upsample2x(self.to_rgb[level - 1](x)), rgb, alpha)
        return to_full_size(rgb, self.resolution)


class PGGANDiscriminator(StageMixin, nn.Module):
    """D (a WGAN critic): full-size images -> one score each, reading only the current resolution.

    ``mbstd_group`` = 0 turns minibatch standard deviation off (for the diversity ablation).
    """

    def __init__(self, img_channels: int = 1, resolution: int = 32, channels: Sequence[int] = (64, 64, 32, 16),
                 mbstd_group: int = 4) -> None:
        super().__init__()
        check_img_channels(img_channels)
        if mbstd_group < 0:
            raise ValueError(f"mbstd_group must be >= 0 (0 = off), got {mbstd_group}")
        self.resolutions = _resolutions(resolution)
        self.n_levels = len(self.resolutions)
        ch = _check_channels(channels, self.n_levels)
        self.img_channels, self.resolution = img_channels, resolution
        self.from_rgb = nn.ModuleList([EqualizedConv2d(img_channels, c, 1) for c in ch])
        self.blocks = nn.ModuleList([nn.Identity()] + [
            nn.Sequential(EqualizedConv2d(ch[k], ch[k], 3), nn.LeakyReLU(0.2),
                          EqualizedConv2d(ch[k], ch[k - 1], 3), nn.LeakyReLU(0.2))
            for k in range(1, self.n_levels)])
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group else None
        extra = 1 if mbstd_group else 0
        self.final_conv = EqualizedConv2d(ch[0] + extra, ch[0], 3)
        self.final_dense = EqualizedLinear(ch[0] * 16, ch[0])
        self.out = EqualizedLinear(ch[0], 1, gain=1.0)
        self._init_stage()

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self, self.img_channels, self.resolution)
        level, alpha = self.stage
        x = pool_to(x, self.resolution, 4 * 2**level)
        h = _lrelu(self.from_rgb[level](x))
        if level > 0:
            h = downsample2x(self.blocks[level](h))
            if alpha < 1.0:  # fade-in mirrored: the old from-RGB on the pooled image, blended out
                h = torch.lerp(_lrelu(self.from_rgb[level - 1](downsample2x(x))), h, alpha)
            for k in range(level - 1, 0, -1):
                h = downsample2x(self.blocks[k](h))
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = _lrelu(self.final_conv(h))
        h = _lrelu(self.final_dense(h.flatten(1)))
        return self.out(h).squeeze(1)
