"""Progressive growing of GANs (Karras et al. 2018, "PGGAN"), small enough to grow 4 -> 32 on a CPU.

The ingredients, each with the paper section it comes from:

* growing (Sec. 2): every resolution block is allocated up front; ``level`` says which is on top
  (0 -> 4x4, 1 -> 8x8, ...). The images going in and out are always full size, as in the official
  code: G up-samples its current output to full size by nearest neighbour, D average-pools its
  input down to the current size, and the reals are pooled the same way (``fade_reals``).
* fade-in (Sec. 2, Fig. 2): while a new block fades in, G outputs ``lerp(old, new, alpha)`` where
  ``old`` is the previous resolution's RGB up-sampled 2x and ``new`` the new block's RGB.
  **Convention: alpha = 0 is the old path only, alpha = 1 the new path only** (the official TF code's
  ``lod`` fraction; the GAN zoo uses the opposite). D mirrors it on the way down, and the reals are
  blended between the two resolutions with the same alpha.
* equalized learning rate (Sec. 4.1), pixel norm after each conv of G and on the latent (Sec. 4.2),
  minibatch standard deviation with group 4 in D's last block (Sec. 3): ``ganlib.layers``.
* up-sample + conv instead of a transposed conv (``up="nearest"``; ``up="transposed"`` is there to
  show the checkerboard artefacts it avoids).
* loss WGAN-GP (lambda 10) + drift 0.001 E[D(real)^2] (Appendix A.1), Adam(lr 1e-3, betas (0, 0.99))
  reset at each phase change, EMA of G with decay 0.999: ``make_trainer``.

The schedule is a ``ganlib.train.Hook`` (``ProgressiveSchedule``) that sets the level and alpha on G,
D and G_ema before every step and resets the optimisers when a phase begins; level and alpha live
in the models' buffers and in the hook's state, so a checkpoint resumes mid-fade with the same alpha.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, downsample2x, upsample2x
from ganlib.models.latent import check_latent
from ganlib.train import Hook, Trainer


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


class _StageMixin:
    """``level`` and ``alpha`` as buffers, so they travel with state_dict, EMA copies and checkpoints."""

    n_levels: int

    def _init_stage(self) -> None:
        self.register_buffer("level", torch.tensor(self.n_levels - 1, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_stage(self, level: int, alpha: float = 1.0) -> None:
        """Put resolution 4 * 2**level on top, blended with the one below by ``alpha`` (0 old .. 1 new)."""
        if not isinstance(level, int) or not 0 <= level < self.n_levels:
            raise ValueError(f"level must be an int in [0, {self.n_levels - 1}] (4x4 .. "
                             f"{4 * 2**(self.n_levels - 1)}), got {level!r}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] (0 = old resolution, 1 = new), got {alpha}")
        self.level.fill_(level)
        self.alpha.fill_(float(alpha))

    @property
    def stage(self) -> Tuple[int, float]:
        return int(self.level), float(self.alpha)

    @property
    def current_resolution(self) -> int:
        return 4 * 2 ** int(self.level)


class PGGANGenerator(_StageMixin, nn.Module):
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
        if img_channels not in (1, 3):
            raise ValueError(f"img_channels must be 1 or 3, got {img_channels}")
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
        check_latent(z, self, f"(N, {self.z_dim})")
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (N, {self.z_dim}), got {tuple(z.shape)}")
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


class PGGANDiscriminator(_StageMixin, nn.Module):
    """D (a WGAN critic): full-size images -> one score each, reading only the current resolution.

    ``mbstd_group`` = 0 turns minibatch standard deviation off (for the diversity ablation).
    """

    def __init__(self, img_channels: int = 1, resolution: int = 32, channels: Sequence[int] = (64, 64, 32, 16),
                 mbstd_group: int = 4) -> None:
        super().__init__()
        if img_channels not in (1, 3):
            raise ValueError(f"img_channels must be 1 or 3, got {img_channels}")
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
        if x.dim() != 4 or x.shape[1] != self.img_channels or x.shape[-1] != self.resolution:
            raise ValueError(f"D expects images (N, {self.img_channels}, {self.resolution}, {self.resolution}), "
                             f"got {tuple(x.shape)}")
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


def to_full_size(x: Tensor, resolution: int) -> Tensor:
    """Nearest-neighbour up-sampling by powers of two until the side is ``resolution`` (pixels copied, exact)."""
    while x.shape[-1] < resolution:
        x = upsample2x(x)
    return x


def pool_to(x: Tensor, resolution: int, target: int) -> Tensor:
    """Average-pool 2x at a time from ``resolution`` down to ``target`` (the same ops every time, so exact)."""
    side = resolution
    while side > target:
        x, side = downsample2x(x), side // 2
    return x


def fade_reals(x: Tensor, level: int, alpha: float) -> Tensor:
    """The reals D sees at ``level`` (Sec. 2, "during a resolution transition, we interpolate between two
    resolutions of the real images"): pooled to 4 * 2**level, blended with the next-coarser version by
    ``alpha`` (0 coarse .. 1 fine), then up-sampled back to full size by nearest neighbour."""
    full = x.shape[-1]
    xr = pool_to(x, full, 4 * 2**level)
    if level > 0 and alpha < 1.0:
        xr = torch.lerp(upsample2x(downsample2x(xr)), xr, alpha)
    return to_full_size(xr, full)


# --- the schedule ----------------------------------------------------------------------------------

class ProgressiveSchedule(Hook):
    """Phases 4x4 stabilise, then (fade in, stabilise) for each larger resolution; the last phase is open.

    ``start_level`` / ``start_step`` start the schedule later (e.g. to branch a run from a checkpoint
    taken at the end of a phase and continue it with a different fade length).

    ``alpha(step) = (step - fade_start) / fade_steps`` during a fade (0 on its first step) and 1
    otherwise. ``fade_steps = 0`` switches resolutions abruptly (the ablation). On every phase change
    the trainer's optimisers are reset (the official code resets Adam whenever the integer part of
    ``lod`` changes: when a fade starts and when it ends).
    """

    def __init__(self, n_levels: int, stabilize_steps: int, fade_steps: Optional[int] = None,
                 start_level: int = 0, start_step: int = 0) -> None:
        fade_steps = stabilize_steps if fade_steps is None else fade_steps
        if n_levels < 1 or stabilize_steps < 1 or fade_steps < 0:
            raise ValueError(f"need n_levels >= 1, stabilize_steps >= 1, fade_steps >= 0; got {n_levels}, "
                             f"{stabilize_steps}, {fade_steps}")
        if not 0 <= start_level < n_levels or start_step < 0:
            raise ValueError(f"start_level must be in [0, {n_levels - 1}] and start_step >= 0, "
                             f"got {start_level}, {start_step}")
        self.n_levels, self.stabilize_steps, self.fade_steps = n_levels, stabilize_steps, fade_steps
        # (level, kind, first step, length); start_level/start_step let a branch of a run begin mid-way
        self.phases: List[Tuple[int, str, int, int]] = [(start_level, "stabilize", start_step, stabilize_steps)]
        for level in range(start_level + 1, n_levels):
            start = self.phases[-1][2] + self.phases[-1][3]
            if fade_steps:
                self.phases.append((level, "fade", start, fade_steps))
                start += fade_steps
            self.phases.append((level, "stabilize", start, stabilize_steps))
        self.phase: Optional[int] = None
        self.level, self.alpha = 0, 1.0

    @property
    def total_steps(self) -> int:
        """Steps until the last phase has had its ``stabilize_steps`` (it goes on if you train longer)."""
        return self.phases[-1][2] + self.phases[-1][3]

    def stage_at(self, step: int) -> Tuple[int, int, float]:
        """(phase index, level, alpha) for a step."""
        for index in range(len(self.phases) - 1, -1, -1):
            level, kind, start, length = self.phases[index]
            if step >= start:
                alpha = (step - start) / length if kind == "fade" else 1.0
                # rounded to float32, the models' buffer type, so the reals and the networks blend alike
                return index, level, float(torch.tensor(min(alpha, 1.0), dtype=torch.float32))
        raise ValueError(f"step {step} is before this schedule starts (step {self.phases[0][2]})")

    def phase_boundaries(self) -> List[Tuple[int, str, int]]:
        """[(start step, kind, resolution)], for plots."""
        return [(start, kind, 4 * 2**level) for level, kind, start, _ in self.phases]

    def apply(self, trainer: Trainer, step: int) -> None:
        index, level, alpha = self.stage_at(step)
        if self.phase is not None and index != self.phase:
            trainer.reset_optimizers()
        self.phase, self.level, self.alpha = index, level, alpha
        for net in (trainer.G, trainer.D, trainer.G_ema):
            if net is not None and hasattr(net, "set_stage"):
                net.set_stage(level, alpha)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.apply(trainer, trainer.step)

    def on_step_start(self, trainer: Trainer, step: int) -> None:
        self.apply(trainer, step)

    def state_dict(self) -> Dict[str, Any]:
        return {"phase": -1 if self.phase is None else self.phase, "level": self.level, "alpha": self.alpha}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.phase = None if state["phase"] < 0 else int(state["phase"])
        self.level, self.alpha = int(state["level"]), float(state["alpha"])


class ProgressiveSource:
    """Wraps a batch source so each batch of reals is ``fade_reals``-ed to the schedule's level and alpha."""

    def __init__(self, source: Any, schedule: ProgressiveSchedule) -> None:
        if not hasattr(source, "batch"):
            raise TypeError(f"source must have .batch(i) (e.g. ganlib.data.TensorSource), got {type(source).__name__}")
        self.source, self.schedule = source, schedule

    def batch(self, index: int):
        batch = self.source.batch(index)
        if isinstance(batch, (tuple, list)):
            return fade_reals(batch[0], self.schedule.level, self.schedule.alpha), batch[1]
        return fade_reals(batch, self.schedule.level, self.schedule.alpha)


def make_trainer(G: PGGANGenerator, D: PGGANDiscriminator, source: Any, schedule: ProgressiveSchedule, *,
                 lr: float = 1e-3, gp_weight: float = 10.0, drift: float = 1e-3, ema_decay: Optional[float] = 0.999,
                 gp_at: str = "full", hooks: Sequence[Hook] = (), **kwargs: Any) -> Trainer:
    """A ``Trainer`` set up as in the paper: WGAN-GP (lambda 10, target 1) + drift, Adam(lr, (0, 0.99)),
    G EMA, and the schedule as the first hook. Extra keyword arguments go to ``Trainer``.

    ``gp_at="full"`` takes the gradient w.r.t. the full-size images, as the official code does (so at
    4x4 on 32x32 images the penalty asks for gradient norm 8 w.r.t. the 4x4 pixels);
    ``"current"`` takes it w.r.t. the images pooled to the current resolution.
    """
    if gp_at not in ("full", "current"):
        raise ValueError(f"gp_at must be 'full' (official code) or 'current', got {gp_at!r}")
    from ganlib.losses import critic_wasserstein, drift_penalty, generator_wasserstein, gradient_penalty

    if G.n_levels != D.n_levels or G.n_levels != schedule.n_levels:
        raise ValueError(f"G ({G.n_levels} levels), D ({D.n_levels}) and the schedule ({schedule.n_levels}) "
                         "must grow to the same resolution")

    def d_loss(real: Tensor, fake: Tensor) -> Tensor:
        return critic_wasserstein(real, fake) + drift * drift_penalty(real)  # Appendix A.1: eps_drift = 0.001

    def d_penalty(critic: nn.Module, real: Tensor, fake: Tensor, labels: Optional[Tensor]) -> Tensor:
        if gp_at == "full":
            return gp_weight * gradient_penalty(critic, real, fake)
        # D's own resolution, not the critic's: under data parallel training the critic is D wrapped in DDP
        full, side = real.shape[-1], D.current_resolution
        return gp_weight * gradient_penalty(lambda x: critic(to_full_size(x, full)), pool_to(real, full, side),
                                            pool_to(fake, full, side))

    return Trainer(G, D, ProgressiveSource(source, schedule), d_loss=d_loss, g_loss=generator_wasserstein,
                   d_penalty=d_penalty, lr=lr, betas=(0.0, 0.99), ema_decay=ema_decay,
                   hooks=[schedule, *hooks], **kwargs)
