"""StyleGAN (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for GANs"), small and faithful.

In the paper's order: the **mapping network** z -> w (Sec. 2), **AdaIN** (eq. 1) and per-pixel **noise**
(Sec. 3.2), the **style layer** made of them, the **synthesis network** from a learned constant 4x4 (Fig. 1b),
the **generator** with style mixing (Sec. 3.1) and truncation (Appendix B), and PGGAN's **discriminator**, which
blurs before downsampling as G blurs after upsampling (Sec. 2). Train it with ``ganlib.train.Trainer`` and
``losses.r1_regularizer`` (Sec. 4); mixing and the ``w_avg`` update happen inside ``forward`` in training mode::

    trainer = Trainer(StyleGenerator(), StyleDiscriminator(), data, d_loss=losses.discriminator_bce,
                      g_loss=losses.generator_nonsaturating, d_penalty=losses.r1_regularizer(gamma=1.0),
                      d_penalty_every=4, lr=1e-3, betas=(0.0, 0.99), ema_decay=0.999)

``modulation="demod"`` swaps AdaIN for StyleGAN2's weight demodulation (Karras et al. 2020, Sec. 2.2), which
removes AdaIN's "droplets" (``ganlib.experiments.stylegan.droplet_ratios``). ``progressive=True`` on both
networks grows them from 4x4 as the paper did (``ganlib.progressive``); the default is StyleGAN2's fixed size.
``blur=False`` on either network drops its low-pass filters (an ablation the chapter-10 reference recipe measures).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.layers import Blur, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, downsample2x, upsample2x
from ganlib.models.checks import check_images, check_img_channels, check_latent
from ganlib.progressive import OptionalStageMixin, pool_to, to_full_size

NOISE_MODES = ("random", "const", "none")


def _channels(resolution: int, fmap_base: int, fmap_max: int) -> List[int]:
    """Feature maps at 4x4, 8x8, ..., resolution: fmap_base / side, capped at fmap_max (the paper's nf())."""
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8 (e.g. 32), got {resolution!r}")
    return [max(1, min(fmap_max, fmap_base // 2 ** r)) for r in range(2, int(math.log2(resolution)) + 1)]


# --- mapping network --------------------------------------------------------------------------------

class MappingNetwork(nn.Module):
    """z -> w: pixel-normalise z, then ``depth`` equalized FC layers with LeakyReLU(0.2) (Sec. 2, Fig. 1b);
    ``lr_mul`` = 0.01: a 100x lower learning rate than the synthesis network's, for stability (Appendix C)."""

    def __init__(self, z_dim: int = 64, w_dim: int = 64, depth: int = 8, width: Optional[int] = None,
                 lr_mul: float = 0.01) -> None:
        super().__init__()
        if depth < 1 or min(z_dim, w_dim) < 1:
            raise ValueError(f"the mapping needs depth >= 1 and positive z_dim, w_dim; got {depth}, {z_dim}, {w_dim}")
        dims = [z_dim] + [width or w_dim] * (depth - 1) + [w_dim]
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
    """AdaIN (eq. 1): each channel of each sample to mean 0, std 1, then x * (y_s + 1) + y_b; y_s, y_b: (N, C).
    The "+ 1" (official code) makes a zero-initialised style the identity."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps)
    return x * (y_scale[:, :, None, None] + 1) + y_bias[:, :, None, None]


class AdaIN(nn.Module):
    """Learned affine map A: w -> (y_s, y_b), then ``adain``; gain 1 and bias 0, so styles start near identity."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y_scale, y_bias = self.style(w).chunk(2, dim=1)
        return adain(x, y_scale, y_bias)


class NoiseInjection(nn.Module):
    """x + weight_c * noise: one N(0, 1) image per sample, scaled per channel (Sec. 3.2); weights start at 0
    (official code), so G starts deterministic and learns how much detail each channel wants."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + self.weight.view(1, -1, 1, 1) * noise


# --- the style layer: AdaIN (StyleGAN) or a modulated convolution (StyleGAN2) -------------------------

class _SynthesisLayer(nn.Module):
    """Both style layers (Fig. 1b): (upsample) -> convolve -> (blur) -> noise -> bias -> LeakyReLU -> restyle, w
    entering in ``convolve(x, w)`` and ``restyle(features, w)``; ``features``: the maps AdaIN renormalises."""

    def _add_noise_and_bias(self, channels: int, upsample: bool, blur: bool) -> None:
        self.upsample = upsample
        self.blur = Blur() if upsample and blur else nn.Identity()  # low-pass after upsampling (Sec. 2)
        self.noise = NoiseInjection(channels)
        self.bias = nn.Parameter(torch.zeros(channels))

    def features(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        x = self.blur(self.convolve(upsample2x(x) if self.upsample else x, w))
        return F.leaky_relu(self.noise(x, noise) + self.bias.view(1, -1, 1, 1), 0.2)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        return self.restyle(self.features(x, w, noise), w)


class StyleLayer(_SynthesisLayer):
    """StyleGAN's layer: (upsample, conv, blur) -> noise -> bias -> LeakyReLU -> AdaIN(w) (Fig. 1b)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, upsample: bool = False,
                 blur: bool = True, conv: bool = True) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        self.adain = AdaIN(out_channels, w_dim)
        self._add_noise_and_bias(out_channels, upsample, blur)

    @classmethod
    def on_constant(cls, channels: int, w_dim: int) -> StyleLayer:
        """The first layer restyles the learned 4x4 constant itself: no conv before its noise (Fig. 1b)."""
        return cls(channels, channels, w_dim, conv=False)

    def convolve(self, x: Tensor, w: Tensor) -> Tensor:
        return x if self.conv is None else self.conv(x)

    def restyle(self, features: Tensor, w: Tensor) -> Tensor:
        return self.adain(features, w)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's replacement for AdaIN (Karras et al. 2020, Sec. 2.2, eqs. 1-3): the style scales the weights
    per sample and input channel, then each output channel's weights get unit norm ("demodulation"). Output
    statistics are *expected* to be unit, not forced per map, so no local spike can game a normalisation."""

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


class ModulatedStyleLayer(_SynthesisLayer):
    """StyleGAN2's layer (Sec. 2.2, Fig. 2c): (upsample) -> modulated conv(w) -> (blur) -> noise -> bias ->
    LeakyReLU * sqrt(2). The style is in the weights, so nothing normalises the features afterwards."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, upsample: bool = False,
                 blur: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, w_dim)
        self._add_noise_and_bias(out_channels, upsample, blur)

    @classmethod
    def on_constant(cls, channels: int, w_dim: int) -> ModulatedStyleLayer:
        """StyleGAN2 convolves the constant too (Fig. 2c): the first layer is an ordinary one."""
        return cls(channels, channels, w_dim)

    def convolve(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w)

    def restyle(self, features: Tensor, w: Tensor) -> Tensor:
        return features * math.sqrt(2)  # LeakyReLU's gain (official code): unit variance in, unit variance out


STYLE_LAYERS = {"adain": StyleLayer, "demod": ModulatedStyleLayer}  # StyleGenerator(modulation=...)


# --- synthesis network ------------------------------------------------------------------------------

class SynthesisNetwork(OptionalStageMixin, nn.Module):
    """Learned constant 4x4 -> two style layers per resolution (``STYLE_LAYERS[modulation]``) -> 1x1 toRGB (Fig. 1b).
    ``progressive=True`` gives every lower resolution a toRGB too; at ``level`` k only the layers up to 4 * 2**k
    run, faded in from the resolution below by ``alpha`` and up-sampled to full size, as in PGGAN's G."""

    def __init__(self, w_dim: int = 64, resolution: int = 32, img_channels: int = 3, fmap_base: int = 1024,
                 fmap_max: int = 64, const_init: str = "ones", modulation: str = "adain",
                 progressive: bool = False, blur: bool = True) -> None:
        super().__init__()
        ch = _channels(resolution, fmap_base, fmap_max)
        if const_init not in ("ones", "randn"):
            raise ValueError(f"const_init must be 'ones' (official code) or 'randn' (rosinality), got {const_init!r}")
        if modulation not in STYLE_LAYERS:
            raise ValueError(f"unknown modulation {modulation!r}; choose 'adain' (StyleGAN) or 'demod' (StyleGAN2)")
        # 'ones' (official): flat, the layout must be learned into it; 'randn' (rosinality): a pattern from step 0
        self.const = nn.Parameter(torch.ones(1, ch[0], 4, 4) if const_init == "ones" else torch.randn(1, ch[0], 4, 4))
        Layer = STYLE_LAYERS[modulation]
        layers = [Layer.on_constant(ch[0], w_dim), Layer(ch[0], ch[0], w_dim)]
        for c_in, c_out in zip(ch, ch[1:]):
            layers += [Layer(c_in, c_out, w_dim, upsample=True, blur=blur), Layer(c_out, c_out, w_dim)]
        self.layers, self.num_layers = nn.ModuleList(layers), len(layers)
        self.to_rgb = EqualizedConv2d(ch[-1], img_channels, 1, gain=1.0)
        if progressive:  # toRGB for 4x4 .. resolution/2; the top one is ``to_rgb``
            self.to_rgb_lower = nn.ModuleList(EqualizedConv2d(c, img_channels, 1, gain=1.0) for c in ch[:-1])
        self.resolutions = [4 * 2 ** (i // 2) for i in range(len(layers))]  # the output size of each layer
        self.channels, self.resolution = ch, resolution
        self._init_growth(progressive, len(ch))
        g = torch.Generator().manual_seed(0)  # 'const' noise: one fixed image per layer, the same detail every call
        for i, res in enumerate(self.resolutions):
            self.register_buffer(f"noise_const_{i}", torch.randn(1, 1, res, res, generator=g))

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
        drawn = noise is None or any(n is None for n in noise)  # given noise leaves the global RNG alone
        defaults = self.make_noise(ws.shape[0], noise_mode) if drawn else [None] * self.num_layers
        level, alpha = self.stage
        x = previous = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers[:2 * (level + 1)]):  # two layers per resolution up to the top one
            if i == 2 * level:
                previous = x                                         # the output of the resolution below
            x = layer(x, ws[:, i], defaults[i] if noise is None or noise[i] is None else noise[i].to(x))
        rgb = self._end_at(level, self.to_rgb, "to_rgb_lower")(x)
        if level > 0 and alpha < 1.0:  # fade-in (PGGAN Sec. 2): the old resolution's image, up-sampled, blended out
            rgb = torch.lerp(upsample2x(self._end_at(level - 1, self.to_rgb, "to_rgb_lower")(previous)), rgb, alpha)
        return to_full_size(rgb, self.resolution)


# --- generator: mapping, style mixing, truncation, synthesis ----------------------------------------

def style_mixing(ws1: Tensor, ws2: Tensor, prob: float = 0.9,
                 generator: Optional[torch.Generator] = None) -> Tuple[Tensor, int]:
    """Mixing regularisation (Sec. 3.1): with probability ``prob``, layers >= c of (N, L, w_dim) ``ws1`` take
    ``ws2``'s, c ~ U{1, ..., L-1}, one c per minibatch (official code). Returns them and c (L: no mixing)."""
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
    """Truncation trick (Appendix B): w' = w_avg + psi (w - w_avg) on the first ``cutoff`` layers (None: all);
    psi = 1 is the identity, psi = 0 collapses every sample to w_avg."""
    if ws.dim() != 3:
        raise ValueError(f"ws must be (N, L, w_dim), got {tuple(ws.shape)}")
    n_layers = ws.shape[1]
    cutoff = n_layers if cutoff is None else cutoff
    if not 0 <= cutoff <= n_layers:
        raise ValueError(f"truncation cutoff must be in [0, {n_layers}], got {cutoff}")
    layer = torch.arange(n_layers, device=ws.device).view(1, -1, 1)
    return torch.where(layer < cutoff, torch.lerp(w_avg.to(ws), ws, psi), ws)


class StyleGenerator(nn.Module):
    """StyleGAN's generator: mapping z -> w, broadcast to every layer (mixed while training), synthesis.

    Training mode: ``forward`` updates ``w_avg`` (EMA, decay ``w_avg_beta``) and mixes styles with probability
    ``style_mixing_prob``; eval mode: truncation when ``psi`` < 1. Paper: z_dim = w_dim = 512, mapping 8 x 512 at
    ``mapping_lr_mul`` 0.01, mixing 0.9, beta 0.995 (small defaults, for CPU). ``const_init``: 'ones' (official)
    or 'randn'; ``modulation``: 'adain' (``StyleLayer``) or 'demod' (StyleGAN2, ``ModulatedStyleLayer``);
    ``progressive``: grow from 4x4 with a ``ProgressiveSchedule`` and ``StyleDiscriminator(progressive=True)``."""

    def __init__(self, z_dim: int = 64, w_dim: int = 64, mapping_depth: int = 8, mapping_width: Optional[int] = None,
                 mapping_lr_mul: float = 0.01, resolution: int = 32, img_channels: int = 3, fmap_base: int = 1024,
                 fmap_max: int = 64, style_mixing_prob: float = 0.9, w_avg_beta: float = 0.995,
                 const_init: str = "ones", modulation: str = "adain", progressive: bool = False,
                 blur: bool = True) -> None:
        super().__init__()
        check_img_channels(img_channels)
        if not (0.0 <= style_mixing_prob <= 1.0 and 0.0 <= w_avg_beta < 1.0):
            raise ValueError("style_mixing_prob must be in [0, 1] and w_avg_beta in [0, 1) (paper: 0.9, 0.995), "
                             f"got {style_mixing_prob}, {w_avg_beta}")
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_depth, mapping_width, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, fmap_base, fmap_max, const_init, modulation,
                                          progressive, blur)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.num_layers = self.synthesis.num_layers
        self.z_dim, self.w_dim, self.resolution, self.img_channels = z_dim, w_dim, resolution, img_channels
        self.style_mixing_prob, self.w_avg_beta = style_mixing_prob, w_avg_beta
        self.last_crossover: Optional[int] = None  # the crossover index of the last training forward

    def set_stage(self, level: int, alpha: float = 1.0) -> None:  # for a ProgressiveSchedule: G's stage is synthesis's
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
            with torch.no_grad():  # w's running mean for truncation (Appendix B), kept fp32 under autocast too
                self.w_avg.copy_(torch.lerp(w.detach().to(self.w_avg.dtype).mean(0), self.w_avg, self.w_avg_beta))
            if self.style_mixing_prob > 0:
                ws2 = self.broadcast(self.mapping(torch.randn_like(z)))
                ws, self.last_crossover = style_mixing(ws, ws2, self.style_mixing_prob)
        elif psi != 1.0:
            ws = truncate(ws, self.w_avg, psi, cutoff)
        return self.synthesis(ws, noise, noise_mode)


# --- discriminator ----------------------------------------------------------------------------------

class DiscriminatorBlock(nn.Module):
    """conv3x3 -> LReLU -> blur -> conv3x3 -> 2x2 average pool -> LReLU (PGGAN's D block, blurred as in StyleGAN)."""

    def __init__(self, in_channels: int, out_channels: int, blur: bool = True) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.blur = Blur() if blur else nn.Identity()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.conv0(x), 0.2)
        return F.leaky_relu(downsample2x(self.conv1(self.blur(x))), 0.2)


class StyleDiscriminator(OptionalStageMixin, nn.Module):
    """PGGAN-style D with equalized LR, blur before downsampling and minibatch stddev; returns (N,) logits.
    ``progressive=True`` gives each lower resolution a fromRGB; at ``level`` k the input is pooled to 4 * 2**k
    and only the blocks from there down run, the new one faded in by ``alpha`` (PGGAN Sec. 2)."""

    def __init__(self, resolution: int = 32, img_channels: int = 3, fmap_base: int = 1024, fmap_max: int = 64,
                 mbstd_group_size: int = 4, progressive: bool = False, blur: bool = True) -> None:
        super().__init__()
        ch = _channels(resolution, fmap_base, fmap_max)  # at 4x4, 8x8, ..., resolution
        check_img_channels(img_channels)
        self.from_rgb = EqualizedConv2d(img_channels, ch[-1], 1)
        if progressive:  # fromRGB for 4x4 .. resolution/2
            self.from_rgb_lower = nn.ModuleList(EqualizedConv2d(img_channels, c, 1) for c in ch[:-1])
        down = ch[::-1]  # from the top resolution down to 8x8, each block halving the side
        self.blocks = nn.Sequential(*[DiscriminatorBlock(c_in, c_out, blur) for c_in, c_out in zip(down, down[1:])])
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualizedConv2d(ch[0] + 1, ch[0], 3)
        self.fc = EqualizedLinear(ch[0] * 16, ch[0])
        self.out = EqualizedLinear(ch[0], 1, gain=1.0)
        self.resolution, self.img_channels = resolution, img_channels
        self._init_growth(progressive, len(ch))

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self, self.img_channels, self.resolution)
        level, alpha = self.stage
        x = pool_to(x, self.resolution, 4 * 2 ** level)      # a no-op at the top level
        h = F.leaky_relu(self._end_at(level, self.from_rgb, "from_rgb_lower")(x), 0.2)
        first = self.n_levels - 1 - level                    # blocks[0] takes the full resolution down
        if level > 0:
            h = self.blocks[first](h)
            if alpha < 1.0:  # fade-in mirrored: the old fromRGB on the pooled image, blended out
                old = self._end_at(level - 1, self.from_rgb, "from_rgb_lower")(downsample2x(x))
                h = torch.lerp(F.leaky_relu(old, 0.2), h, alpha)
        x = self.blocks[first + 1:](h)
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        x = F.leaky_relu(self.fc(x.flatten(1)), 0.2)
        return self.out(x)[:, 0]
