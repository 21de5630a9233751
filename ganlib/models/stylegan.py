"""StyleGAN (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for GANs"), small and faithful.

The generator splits in two:

* a **mapping network** f: z -> w (an MLP, 8 layers in the paper, Sec. 2) whose learning rate is
  100x smaller (lr multiplier 0.01, Appendix C) so that w can drift away from z's Gaussian geometry;
* a **synthesis network** g that starts from a learned constant 4x4 tensor (not from z) and, at each
  layer, convolves, adds per-pixel noise scaled by a learned per-channel weight (init 0, Sec. 3.2),
  and re-styles the features by AdaIN (eq. 1): instance-normalise, then x * (y_s + 1) + y_b with
  (y_s, y_b) an affine map of w.

Training tricks from the paper, all here: style-mixing regularisation (two w's, one crossover layer,
probability 0.9, Sec. 3.1), the truncation trick with a running mean of w (EMA 0.995, Appendix B),
[1, 2, 1] blur after upsampling in G and before downsampling in D (Sec. 2), and the non-saturating
logistic loss with R1 (gamma/2 E||grad D(x)||^2, Sec. 4 / Mescheder et al. 2018).

Train it with ``ganlib.train.Trainer``; style mixing and the w_avg update happen inside ``forward``
when the module is in training mode, so the loop needs nothing special::

    G, D = StyleGenerator(), StyleDiscriminator()
    trainer = Trainer(G, D, data, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                      d_penalty=r1_regularizer(gamma=1.0), d_penalty_every=4,
                      lr=1e-3, betas=(0.0, 0.99), ema_decay=0.999)

One StyleGAN2 piece is here as an option, ``StyleGenerator(modulation="demod")``: weight demodulation
(Karras et al. 2020, Sec. 2.2) instead of AdaIN. AdaIN normalises every feature map by its own statistics, and
generators learn to game that with a single huge activation (the "droplet" artifact, StyleGAN2 Sec. 2);
``droplet_ratios`` measures it, and chapter 10 does so on its AdaIN generator.

Progressive growing (used by the paper) is optional, ``progressive=True`` on both networks, driven by
``ProgressiveSchedule`` and ``ProgressiveSource`` of ``ganlib.experiments.progressive`` (fade-in, reals pooled
alike); a fixed-resolution run is the default, as in StyleGAN2.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.layers import Blur, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, downsample2x, upsample2x
from ganlib.losses import r1_penalty
from ganlib.models.checks import check_images, check_img_channels, check_latent
from ganlib.progressive import StageMixin, pool_to, to_full_size
from ganlib.runtime import eval_mode

NOISE_MODES = ("random", "const", "none")
MODULATIONS = ("adain", "demod")


def _log2_resolution(resolution: int) -> int:
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8 (e.g. 32), got {resolution!r}")
    return int(math.log2(resolution))


def _channels(resolution: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps at a resolution: fmap_base / resolution, capped at fmap_max (the paper's nf())."""
    return max(1, min(fmap_max, fmap_base // resolution))


# --- mapping network --------------------------------------------------------------------------------

class MappingNetwork(nn.Module):
    """z -> w: pixel-normalise z, then ``depth`` equalized FC layers with LeakyReLU(0.2) (Sec. 2, Fig. 1b).

    Every layer uses ``lr_mul`` = 0.01 (Appendix C): the effective learning rate of the mapping is 100x
    lower than the synthesis network's, which the paper found necessary for stable training.
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, depth: int = 8, width: Optional[int] = None,
                 lr_mul: float = 0.01) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"mapping depth must be >= 1, got {depth}")
        if min(z_dim, w_dim) < 1:
            raise ValueError(f"z_dim and w_dim must be positive, got {z_dim}, {w_dim}")
        width = width or w_dim
        dims = [z_dim] + [width] * (depth - 1) + [w_dim]
        self.norm = PixelNorm()
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))
        self.z_dim, self.w_dim, self.depth = z_dim, w_dim, depth

    def forward(self, z: Tensor) -> Tensor:
        check_latent(z, self, self.z_dim)
        x = self.norm(z)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
        return x


# --- AdaIN and noise --------------------------------------------------------------------------------

def adain(x: Tensor, y_scale: Tensor, y_bias: Tensor, eps: float = 1e-8) -> Tensor:
    """AdaIN (eq. 1): normalise each channel of each sample to mean 0, std 1, then x * (y_s + 1) + y_b.

    ``y_scale``, ``y_bias``: (N, C). The "+ 1" (official code) makes a zero-initialised style the identity.
    """
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps)
    return x * (y_scale[:, :, None, None] + 1) + y_bias[:, :, None, None]


class AdaIN(nn.Module):
    """Learned affine map A: w -> (y_s, y_b), then ``adain``; gain 1 and bias 0, so styles start near identity."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        self.channels = channels

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y_scale, y_bias = self.style(w).chunk(2, dim=1)
        return adain(x, y_scale, y_bias)


class NoiseInjection(nn.Module):
    """x + weight_c * noise: one single-channel N(0, 1) image per sample, scaled per channel (Sec. 3.2).

    The per-channel weights start at 0 (official code), so the generator starts deterministic and
    learns how much stochastic detail each channel wants.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + self.weight.view(1, -1, 1, 1) * noise


class ModulatedConv2d(nn.Module):
    """StyleGAN2's replacement for AdaIN (Karras et al. 2020, Sec. 2.2, eqs. 1-3): the style scales the conv
    weights per sample and input channel, then each output channel's weights are rescaled to unit norm
    ("demodulation"). The output statistics are *expected* to be unit, not forced per feature map, so a
    local spike can no longer dominate a normalisation the way it can inside AdaIN.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 3,
                 demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.style = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)  # s starts at 1: plain conv
        self.demodulate, self.padding = demodulate, kernel_size // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        n, c, h, width = x.shape
        s = self.style(w)                                                       # (N, in)
        weight = self.weight_scale * self.weight[None] * s[:, None, :, None, None]  # eq. 1: (N, out, in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)  # eq. 3
        out = F.conv2d(x.reshape(1, n * c, h, width), weight.reshape(-1, c, *weight.shape[3:]),
                       padding=self.padding, groups=n)                          # one conv per sample
        return out.reshape(n, -1, h, width)


class StyleLayer(nn.Module):
    """One 'layer' of the synthesis network, with the style entering in one of two ways.

    * ``modulation="adain"`` (StyleGAN): (upsample, conv, blur) -> noise -> bias -> LeakyReLU -> AdaIN(w).
    * ``modulation="demod"`` (StyleGAN2): (upsample) -> modulated conv(w) -> (blur) -> noise -> bias -> LeakyReLU * sqrt(2).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, upsample: bool = False,
                 conv: bool = True, modulation: str = "adain") -> None:
        super().__init__()
        if modulation not in MODULATIONS:
            raise ValueError(f"unknown modulation {modulation!r}; choose 'adain' (StyleGAN) or 'demod' (StyleGAN2)")
        self.upsample, self.modulation = upsample, modulation
        if modulation == "adain":
            self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
            self.adain: Optional[AdaIN] = AdaIN(out_channels, w_dim)
        else:  # StyleGAN2 convolves the constant too, so every layer has a (modulated) conv
            self.conv = ModulatedConv2d(in_channels, out_channels, w_dim)
            self.adain = None
        self.blur = Blur() if upsample else None
        self.noise = NoiseInjection(out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def features(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        """Everything before AdaIN: the feature maps whose statistics AdaIN overwrites (used by ``droplet_ratios``)."""
        if self.upsample:
            x = upsample2x(x)
        if isinstance(self.conv, ModulatedConv2d):
            x = self.conv(x, w)
        elif self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)  # blur after upsampling (Sec. 2, official upscale2d_conv2d)
        return F.leaky_relu(self.noise(x, noise) + self.bias.view(1, -1, 1, 1), 0.2)

    def restyle(self, features: Tensor, w: Tensor) -> Tensor:
        """AdaIN with the style of w, or (demod) the LeakyReLU gain sqrt(2) that keeps unit variance."""
        return self.adain(features, w) if self.adain is not None else features * math.sqrt(2)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        return self.restyle(self.features(x, w, noise), w)


class _Growable(StageMixin):
    """PGGAN's ``level``/``alpha`` stage (``ProgressiveSchedule`` calls ``set_stage``), made optional: only a
    model built with ``progressive=True`` has the buffers; a fixed-resolution one is always at its top level
    with alpha 1 and refuses to be staged."""

    progressive: bool

    def _init_growth(self, progressive: bool, n_levels: int) -> None:
        self.progressive, self.n_levels = progressive, n_levels
        if progressive:
            self._init_stage()

    def set_stage(self, level: int, alpha: float = 1.0) -> None:
        if not self.progressive:
            raise ValueError(f"{type(self).__name__} was built without progressive=True, so it cannot be staged; "
                             "build it with progressive=True to grow it with a ProgressiveSchedule")
        super().set_stage(level, alpha)

    @property
    def stage(self) -> Tuple[int, float]:
        """(level, alpha); a fixed-resolution model is always at its top level with alpha 1."""
        return super().stage if self.progressive else (self.n_levels - 1, 1.0)


# --- style mixing and truncation (pure functions, tested against their definitions) ------------------

def style_mixing(ws1: Tensor, ws2: Tensor, prob: float = 0.9,
                 generator: Optional[torch.Generator] = None) -> Tuple[Tensor, int]:
    """Mixing regularisation (Sec. 3.1): with probability ``prob`` layers >= c take w2, c ~ U{1, ..., L-1}.

    ``ws1``, ``ws2``: (N, L, w_dim) per-layer styles. Returns the mixed styles and the crossover index c
    (c = L when no mixing happens). One crossover per minibatch, as in the official code.
    """
    if ws1.shape != ws2.shape or ws1.dim() != 3:
        raise ValueError(f"ws1 and ws2 must both be (N, L, w_dim), got {tuple(ws1.shape)} and {tuple(ws2.shape)}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"style mixing probability must be in [0, 1], got {prob}")
    n_layers = ws1.shape[1]
    if n_layers < 2 or torch.rand((), generator=generator).item() >= prob:
        return ws1, n_layers
    crossover = int(torch.randint(1, n_layers, (), generator=generator))
    layer = torch.arange(n_layers, device=ws1.device).view(1, -1, 1)
    return torch.where(layer < crossover, ws1, ws2), crossover


def truncate(ws: Tensor, w_avg: Tensor, psi: float = 0.7, cutoff: Optional[int] = None) -> Tensor:
    """Truncation trick (Appendix B): w' = w_avg + psi (w - w_avg) on the first ``cutoff`` layers only.

    psi = 1 is the identity, psi = 0 collapses every sample to w_avg; ``cutoff`` None means all layers.
    """
    if ws.dim() != 3:
        raise ValueError(f"ws must be (N, L, w_dim), got {tuple(ws.shape)}")
    n_layers = ws.shape[1]
    cutoff = n_layers if cutoff is None else cutoff
    if not 0 <= cutoff <= n_layers:
        raise ValueError(f"truncation cutoff must be in [0, {n_layers}], got {cutoff}")
    layer = torch.arange(n_layers, device=ws.device).view(1, -1, 1)
    return torch.where(layer < cutoff, torch.lerp(w_avg.to(ws), ws, psi), ws)


# --- generator --------------------------------------------------------------------------------------

class SynthesisNetwork(_Growable, nn.Module):
    """Learned constant 4x4 -> two style layers per resolution -> 1x1 toRGB at the end (Fig. 1b).

    With ``progressive=True`` every lower resolution also gets a toRGB, and at ``level`` k only the layers up
    to 4 * 2**k run; the image is faded from the previous resolution's toRGB (up-sampled) by ``alpha`` and
    returned up-sampled to full size, exactly as PGGAN's generator does (the StyleGAN paper grew progressively).
    """

    def __init__(self, w_dim: int = 64, resolution: int = 32, img_channels: int = 3, fmap_base: int = 1024,
                 fmap_max: int = 64, const_init: str = "ones", modulation: str = "adain",
                 progressive: bool = False) -> None:
        super().__init__()
        log2 = _log2_resolution(resolution)
        if const_init not in ("ones", "randn"):
            raise ValueError(f"const_init must be 'ones' (official code) or 'randn' (rosinality), got {const_init!r}")
        ch = [_channels(2 ** r, fmap_base, fmap_max) for r in range(2, log2 + 1)]  # channels at 4, 8, ...
        # Official init is ones: a spatially flat start, so layout must be learned into the constant;
        # 'randn' (rosinality's port) gives every channel a spatial pattern from step 0.
        self.const = nn.Parameter(torch.ones(1, ch[0], 4, 4) if const_init == "ones" else torch.randn(1, ch[0], 4, 4))
        m = modulation
        layers = [StyleLayer(ch[0], ch[0], w_dim, conv=False, modulation=m), StyleLayer(ch[0], ch[0], w_dim, modulation=m)]
        for i in range(1, len(ch)):
            layers += [StyleLayer(ch[i - 1], ch[i], w_dim, upsample=True, modulation=m),
                       StyleLayer(ch[i], ch[i], w_dim, modulation=m)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = EqualizedConv2d(ch[-1], img_channels, 1, gain=1.0)
        if progressive:  # toRGB for 4x4 .. resolution/2; the top one is ``to_rgb``
            self.to_rgb_lower = nn.ModuleList(EqualizedConv2d(c, img_channels, 1, gain=1.0) for c in ch[:-1])
        self.resolutions = [4 * 2 ** (i // 2) for i in range(len(layers))]  # the output size of each layer
        self.channels, self.resolution = ch, resolution
        self._init_growth(progressive, len(ch))
        # Fixed noise images (one per layer) for 'const' mode: the same stochastic detail on every call.
        g = torch.Generator().manual_seed(0)
        for i, res in enumerate(self.resolutions):
            self.register_buffer(f"noise_const_{i}", torch.randn(1, 1, res, res, generator=g))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def make_noise(self, n: int, mode: str = "random", generator: Optional[torch.Generator] = None) -> List[Tensor]:
        """Per-layer noise images (n or 1, 1, res, res): fresh N(0,1), the fixed 'const' ones, or zeros."""
        if mode not in NOISE_MODES:
            raise ValueError(f"unknown noise mode {mode!r}; choose one of {', '.join(NOISE_MODES)}")
        dev = self.const.device
        if mode == "const":
            return [getattr(self, f"noise_const_{i}") for i in range(self.num_layers)]
        if mode == "none":
            return [torch.zeros(1, 1, r, r, device=dev) for r in self.resolutions]
        return [torch.randn(n, 1, r, r, generator=generator).to(dev) if generator is not None
                else torch.randn(n, 1, r, r, device=dev) for r in self.resolutions]

    def forward(self, ws: Tensor, noise: Optional[Sequence[Optional[Tensor]]] = None,
                noise_mode: str = "random") -> Tensor:
        """ws: (N, num_layers, w_dim). ``noise``: a list with one tensor (or None = use ``noise_mode``) per layer."""
        if ws.dim() != 3 or ws.shape[1] != self.num_layers:
            raise ValueError(f"ws must be (N, {self.num_layers}, w_dim), got {tuple(ws.shape)}")
        if noise is not None and len(noise) != self.num_layers:
            raise ValueError(f"noise must be a list of {self.num_layers} tensors (one per layer), got {len(noise)}")
        defaults = self.make_noise(ws.shape[0], noise_mode)
        level, alpha = self.stage
        x = previous = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers[:2 * (level + 1)]):  # two layers per resolution up to the top one
            if i == 2 * level:
                previous = x                                         # the output of the resolution below
            given = None if noise is None else noise[i]
            x = layer(x, ws[:, i], defaults[i] if given is None else given.to(x))
        rgb = self._rgb(level, x)
        if level > 0 and alpha < 1.0:  # fade-in (PGGAN Sec. 2): the old resolution's image, up-sampled, blended out
            rgb = torch.lerp(upsample2x(self._rgb(level - 1, previous)), rgb, alpha)
        return to_full_size(rgb, self.resolution)

    def _rgb(self, level: int, x: Tensor) -> Tensor:
        return self.to_rgb(x) if level == self.n_levels - 1 else self.to_rgb_lower[level](x)


class StyleGenerator(nn.Module):
    """StyleGAN's generator: mapping z -> w, broadcast to every layer (mixed while training), synthesis.

    In training mode ``forward`` also updates ``w_avg`` (EMA, beta 0.995) and applies style mixing with
    probability ``style_mixing_prob``; in eval mode it applies truncation when ``psi`` < 1.

    Args:
        z_dim, w_dim: latent sizes (paper: 512, 512; small defaults for CPU).
        mapping_depth, mapping_width: the mapping MLP (paper: 8 layers of 512).
        mapping_lr_mul: learning-rate multiplier of the mapping network (paper: 0.01).
        resolution, img_channels: output size, a power of two >= 8, and 1 or 3 channels.
        fmap_base, fmap_max: feature maps per resolution = min(fmap_max, fmap_base / resolution).
        style_mixing_prob: probability of mixing two styles in a training batch (paper: 0.9).
        w_avg_beta: EMA decay of the tracked mean w used by truncation (paper: 0.995).
        const_init: 'ones' (official) or 'randn' for the learned 4x4 input.
        modulation: how a style enters a layer: 'adain' (StyleGAN, eq. 1) or 'demod' (StyleGAN2's
            weight demodulation, which removes AdaIN's "droplet" spikes; see ``ModulatedConv2d``).
        progressive: grow from 4x4 with ``ganlib.experiments.progressive.ProgressiveSchedule`` (pair it with a
            ``StyleDiscriminator(progressive=True)``); off by default, a fixed-resolution run as in StyleGAN2.
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, mapping_depth: int = 8, mapping_width: Optional[int] = None,
                 mapping_lr_mul: float = 0.01, resolution: int = 32, img_channels: int = 3, fmap_base: int = 1024,
                 fmap_max: int = 64, style_mixing_prob: float = 0.9, w_avg_beta: float = 0.995,
                 const_init: str = "ones", modulation: str = "adain", progressive: bool = False) -> None:
        super().__init__()
        check_img_channels(img_channels)
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {style_mixing_prob}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta must be in [0, 1), e.g. 0.995, got {w_avg_beta}")
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_depth, mapping_width, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, fmap_base, fmap_max, const_init, modulation,
                                          progressive)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.z_dim, self.w_dim, self.resolution, self.img_channels = z_dim, w_dim, resolution, img_channels
        self.style_mixing_prob, self.w_avg_beta = style_mixing_prob, w_avg_beta
        self.last_crossover: Optional[int] = None  # the crossover index of the last training forward

    @property
    def num_layers(self) -> int:
        return self.synthesis.num_layers

    def set_stage(self, level: int, alpha: float = 1.0) -> None:
        """Progressive growing: see ``SynthesisNetwork``; called by ``ProgressiveSchedule``."""
        self.synthesis.set_stage(level, alpha)

    @property
    def stage(self) -> Tuple[int, float]:
        return self.synthesis.stage

    def broadcast(self, w: Tensor) -> Tensor:
        """(N, w_dim) -> (N, num_layers, w_dim): the same style for every layer."""
        return w.unsqueeze(1).expand(-1, self.num_layers, -1)

    def styles(self, z: Tensor, psi: float = 1.0, cutoff: Optional[int] = None) -> Tensor:
        """Per-layer styles for z (no mixing), truncated towards ``w_avg`` when psi != 1."""
        ws = self.broadcast(self.mapping(z))
        return ws if psi == 1.0 else truncate(ws, self.w_avg, psi, cutoff)

    def forward(self, z: Tensor, psi: float = 1.0, cutoff: Optional[int] = None,
                noise: Optional[Sequence[Optional[Tensor]]] = None, noise_mode: str = "random") -> Tensor:
        """Images (N, C, R, R) for latents z (N, z_dim); see the class docstring for train vs eval behaviour."""
        check_latent(z, self, self.z_dim)
        w = self.mapping(z)
        ws = self.broadcast(w)
        if self.training:
            with torch.no_grad():  # running mean of w for truncation (Appendix B), beta 0.995
                # in the buffer's dtype: under autocast w is bf16/fp16, and the running mean must stay fp32
                self.w_avg.copy_(torch.lerp(w.detach().to(self.w_avg.dtype).mean(0), self.w_avg, self.w_avg_beta))
            if self.style_mixing_prob > 0:
                ws2 = self.broadcast(self.mapping(torch.randn_like(z)))
                ws, self.last_crossover = style_mixing(ws, ws2, self.style_mixing_prob)
        elif psi != 1.0:
            ws = truncate(ws, self.w_avg, psi, cutoff)
        return self.synthesis(ws, noise, noise_mode)

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 10_000, batch: int = 1000) -> Tensor:
        """The mean of w over ``n`` fresh latents (what the EMA ``w_avg`` tracks), without changing it."""
        device = self.w_avg.device
        total = torch.zeros_like(self.w_avg)
        for start in range(0, n, batch):
            m = min(batch, n - start)
            total += self.mapping(torch.randn(m, self.z_dim, device=device)).sum(0)
        return total / n


# --- discriminator ----------------------------------------------------------------------------------

class DiscriminatorBlock(nn.Module):
    """conv3x3 -> LReLU -> blur -> conv3x3 -> 2x2 average pool -> LReLU (PGGAN's D block, blurred as in StyleGAN)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.blur = Blur()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.conv0(x), 0.2)
        return F.leaky_relu(downsample2x(self.conv1(self.blur(x))), 0.2)


class StyleDiscriminator(_Growable, nn.Module):
    """PGGAN-style D with equalized LR, blur before downsampling and minibatch stddev; returns (N,) logits.

    With ``progressive=True`` each lower resolution gets a fromRGB; at ``level`` k the input is average-pooled
    to 4 * 2**k and only the blocks from there down run, the new block faded in by ``alpha`` (PGGAN Sec. 2).
    """

    def __init__(self, resolution: int = 32, img_channels: int = 3, fmap_base: int = 1024, fmap_max: int = 64,
                 mbstd_group_size: int = 4, progressive: bool = False) -> None:
        super().__init__()
        log2 = _log2_resolution(resolution)
        check_img_channels(img_channels)
        ch = {2 ** r: _channels(2 ** r, fmap_base, fmap_max) for r in range(2, log2 + 1)}
        self.from_rgb = EqualizedConv2d(img_channels, ch[resolution], 1)
        if progressive:  # fromRGB for 4x4 .. resolution/2
            self.from_rgb_lower = nn.ModuleList(EqualizedConv2d(img_channels, ch[2 ** r], 1) for r in range(2, log2))
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch[2 ** r], ch[2 ** (r - 1)]) for r in range(log2, 2, -1)])
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualizedConv2d(ch[4] + 1, ch[4], 3)
        self.fc = EqualizedLinear(ch[4] * 16, ch[4])
        self.out = EqualizedLinear(ch[4], 1, gain=1.0)
        self.resolution, self.img_channels = resolution, img_channels
        self._init_growth(progressive, log2 - 1)

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self, self.img_channels, self.resolution)
        level, alpha = self.stage
        x = pool_to(x, self.resolution, 4 * 2 ** level)      # a no-op at the top level
        h = F.leaky_relu(self._from_rgb(level, x), 0.2)
        first = self.n_levels - 1 - level                    # blocks[0] takes the full resolution down
        if level > 0:
            h = self.blocks[first](h)
            if alpha < 1.0:  # fade-in mirrored: the old fromRGB on the pooled image, blended out
                h = torch.lerp(F.leaky_relu(self._from_rgb(level - 1, downsample2x(x)), 0.2), h, alpha)
        x = self.blocks[first + 1:](h)
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        x = F.leaky_relu(self.fc(x.flatten(1)), 0.2)
        return self.out(x)[:, 0]

    def _from_rgb(self, level: int, x: Tensor) -> Tensor:
        return self.from_rgb(x) if level == self.n_levels - 1 else self.from_rgb_lower[level](x)


# --- loss pieces for the Trainer --------------------------------------------------------------------

def r1_regularizer(gamma: float = 10.0) -> Callable[..., Tensor]:
    """The Trainer's ``d_penalty``: gamma/2 * E||grad D(x_real)||^2 (StyleGAN Sec. 4; Mescheder et al. 2018).

    With ``Trainer(d_penalty_every=k)`` the penalty is applied every k-th D step, multiplied by k
    (lazy regularisation, StyleGAN2 Sec. 3.1).
    """
    if not gamma >= 0:
        raise ValueError(f"R1 gamma must be >= 0 (paper: 10; small images often need 0.1-1), got {gamma}")

    def penalty(D: nn.Module, real: Tensor, fake: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return 0.5 * gamma * r1_penalty(D, real, labels)

    return penalty


# --- analysis helpers used by the notebook and the widgets ------------------------------------------

@torch.no_grad()
def mix_grid(G: StyleGenerator, z_rows: Tensor, z_cols: Tensor, crossover: int, psi: float = 1.0,
             noise_mode: str = "const") -> Tensor:
    """Images (R, C, ...) where cell (i, j) takes layers < crossover from row i's w and the rest from column j's.

    Small ``crossover`` copies only the coarse layers of the row source; large copies nearly everything.
    """
    if not 0 <= crossover <= G.num_layers:
        raise ValueError(f"crossover must be in [0, {G.num_layers}], got {crossover}")
    with eval_mode(G):
        ws_r, ws_c = G.styles(z_rows, psi), G.styles(z_cols, psi)
        r, c = len(z_rows), len(z_cols)
        layer = torch.arange(G.num_layers, device=ws_r.device).view(1, 1, -1, 1)
        ws = torch.where(layer < crossover, ws_r[:, None], ws_c[None, :]).reshape(r * c, G.num_layers, -1)
        images = G.synthesis(ws, noise_mode=noise_mode)
    return images.view(r, c, *images.shape[1:])


def droplet_ratio(features: Tensor) -> float:
    """How spiky feature maps are: the median, over samples and channels, of max |x - mean| / std per map.

    About 2-4 for smooth random maps; a generator that hides one huge value from AdaIN's normalisation
    (StyleGAN2 Sec. 2, the "droplet" artifact) pushes it towards sqrt(H*W), the value of a single spike.
    """
    if features.dim() != 4:
        raise ValueError(f"expected feature maps (N, C, H, W), got {tuple(features.shape)}")
    centred = features - features.mean(dim=(2, 3), keepdim=True)
    std = centred.pow(2).mean(dim=(2, 3)).sqrt()
    return (centred.abs().amax(dim=(2, 3)) / (std + 1e-8)).median().item()


@torch.no_grad()
def style_layer_features(G: StyleGenerator, z: Tensor) -> List[Tensor]:
    """The features entering each style layer's AdaIN (for 'demod': its output before the gain), const noise."""
    with eval_mode(G):
        ws = G.styles(z)
        noise = G.synthesis.make_noise(len(z), "const")
        x = G.synthesis.const.expand(len(z), -1, -1, -1)
        features = []
        for i, layer in enumerate(G.synthesis.layers):
            features.append(layer.features(x, ws[:, i], noise[i]))
            x = layer.restyle(features[-1], ws[:, i])
    return features


def droplet_ratios(G: StyleGenerator, z: Tensor) -> List[float]:
    """``droplet_ratio`` of each style layer's features (``style_layer_features``) for latents z."""
    return [droplet_ratio(h) for h in style_layer_features(G, z)]
