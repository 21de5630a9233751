"""LapGAN (Denton et al. 2015): generate a Laplacian pyramid coarse to fine, one small GAN per level.

The image is never generated in one go. A plain GAN makes an 8x8 image I~_2; then at each finer level
k a *conditional* generator receives the up-sampled coarse image l_k = u(I~_{k+1}) plus one plane of
noise and outputs only the band-pass residual h~_k, so I~_k = l_k + h~_k (Sec. 3, eq. 3). Its
discriminator sees the residual added back onto l_k, a full image (the official CIFAR code adds them
before the first convolution). Each level is trained on its own, on pyramids of *real* images
(``ganlib.pyramid``), so the levels never see each other's mistakes during training; sampling chains
8 -> 16 -> 32.

Following the official code (facebook/eyescream, ``train_cifar_coarse_to_fine*.lua``): the base GAN is
an MLP (``base='conv'`` swaps in a small DCGAN-style 8x8 GAN), a level generator is three convolutions with ReLU, the noise is one U(-1, 1) plane, the class
(optional) enters as one more plane made by a learned Linear(n_classes -> H*W) + ReLU, and D is two
convolutions, dropout and a linear layer. We train with Adam and the non-saturating loss instead of the
paper's SGD with momentum schedule, and use smaller widths and kernels, to fit a CPU budget.

How a level plugs into ``ganlib.train.Trainer`` (``ganlib.experiments.lapgan.make_level_trainer``): the
batch source yields ``(h_k, cond)`` where ``cond`` is the up-sampled coarse real image (plus a class plane),
so the loop's usual ``G(z, y)`` / ``D(x, y)`` calls are ``G_k(noise, l_k)`` / ``D_k(h_k, l_k)``, and the
fakes' coarse images come from real pyramids, exactly as the level-wise training in the paper.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.models.checks import check_img_channels, check_latent
from ganlib.pyramid import laplacian_pyramid, upsample
from ganlib.runtime import eval_mode


class BaseGenerator(nn.Module):
    """The coarsest level, a plain (optionally class-conditional) MLP GAN: z -> 8x8 image in [-1, 1]."""

    def __init__(self, z_dim: int = 100, img_channels: int = 1, size: int = 8, hidden: int = 512,
                 n_classes: int = 0) -> None:
        super().__init__()
        self.z_dim, self.img_channels, self.size, self.n_classes = z_dim, img_channels, size, n_classes
        self.net = nn.Sequential(
            nn.Linear(z_dim + n_classes, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, img_channels * size * size), nn.Tanh())

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        check_latent(z, self, self.z_dim)
        h = torch.cat([z, _one_hot(labels, self.n_classes, z.shape[0])], 1) if self.n_classes else z
        return self.net(h).view(-1, self.img_channels, self.size, self.size)


class BaseDiscriminator(nn.Module):
    """MLP discriminator for the coarsest level, with dropout as the official code."""

    def __init__(self, img_channels: int = 1, size: int = 8, hidden: int = 512, n_classes: int = 0,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = nn.Sequential(
            nn.Linear(img_channels * size * size + n_classes, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Linear(hidden, 1))

    def forward(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        h = x.flatten(1)
        if self.n_classes:
            h = torch.cat([h, _one_hot(labels, self.n_classes, x.shape[0])], 1)
        return self.net(h).squeeze(1)


class ConvBaseGenerator(nn.Module):
    """A small DCGAN-style base (Radford et al. 2016): z [+ one-hot] -> 4x4 -> transposed conv -> 8x8.

    Our option, not the official code's MLP: on MNIST at equal wall-clock it gives better 8x8 thumbnails,
    and the base level is the one that decides which digit the chain draws.
    """

    def __init__(self, z_dim: int = 100, img_channels: int = 1, size: int = 8, width: int = 32,
                 n_classes: int = 0) -> None:
        super().__init__()
        if size != 8:
            raise ValueError(f"the conv base draws 8x8 images (4x4 doubled once), got size {size}; use base='mlp'")
        self.z_dim, self.img_channels, self.size, self.n_classes, self.width = z_dim, img_channels, size, n_classes, width
        self.fc = nn.Sequential(nn.Linear(z_dim + n_classes, 2 * width * 16), nn.BatchNorm1d(2 * width * 16), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, img_channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        check_latent(z, self, self.z_dim)
        h = torch.cat([z, _one_hot(labels, self.n_classes, z.shape[0])], 1) if self.n_classes else z
        return self.net(self.fc(h).view(-1, 2 * self.width, 4, 4))


class ConvBaseDiscriminator(nn.Module):
    """Conv discriminator for an 8x8 base: conv, strided conv to 4x4, linear; the class enters as a plane."""

    def __init__(self, img_channels: int = 1, size: int = 8, width: int = 32, n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.class_plane = _ClassPlane(n_classes, size) if n_classes else None
        self.net = nn.Sequential(
            nn.Conv2d(img_channels + (1 if n_classes else 0), width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (size // 2) ** 2, 1))

    def forward(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        if self.n_classes:
            x = torch.cat([x, self.class_plane(_check_labels(labels, self.n_classes, x.shape[0]))], 1)
        return self.net(x).squeeze(1)


class _ClassPlane(nn.Module):
    """One-hot class -> Linear(n_classes -> H*W) -> ReLU -> one extra input plane (official class-cond. code)."""

    def __init__(self, n_classes: int, size: int) -> None:
        super().__init__()
        self.n_classes, self.size = n_classes, size
        self.linear = nn.Linear(n_classes, size * size)

    def forward(self, labels: Tensor) -> Tensor:
        onehot = _one_hot(labels, self.n_classes, labels.shape[0])
        return F.relu(self.linear(onehot)).view(-1, 1, self.size, self.size)


def split_condition(cond: Tensor, img_channels: int, n_classes: int) -> Tuple[Tensor, Optional[Tensor]]:
    """``cond`` = the up-sampled coarse image, plus (class-conditional) a constant plane holding the label."""
    expected = img_channels + (1 if n_classes else 0)
    if cond.dim() != 4 or cond.shape[1] != expected:
        raise ValueError(f"the condition must be (N, {expected}, H, W): the up-sampled coarse image"
                         f"{' plus a label plane' if n_classes else ''}; got {tuple(cond.shape)}")
    coarse = cond[:, :img_channels]
    labels = cond[:, img_channels, 0, 0].round().long() if n_classes else None
    return coarse, labels


def make_condition(coarse: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """Pack the up-sampled coarse image (and the labels, as a constant plane) into one tensor."""
    if labels is None:
        return coarse
    plane = labels.to(coarse.dtype).view(-1, 1, 1, 1).expand(-1, 1, *coarse.shape[-2:])
    return torch.cat([coarse, plane], 1)


class LevelGenerator(nn.Module):
    """G_k(noise plane, l_k [, class]) -> residual h~_k at the same size (no output squashing: residuals are signed)."""

    def __init__(self, img_channels: int = 1, size: int = 16, hidden: int = 32, kernel: int = 5,
                 n_classes: int = 0) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd so the size is kept, got {kernel}")
        self.img_channels, self.size, self.n_classes = img_channels, size, n_classes
        self.class_plane = _ClassPlane(n_classes, size) if n_classes else None
        c_in = 1 + img_channels + (1 if n_classes else 0)
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv2d(c_in, hidden, kernel, padding=pad), nn.ReLU(),
            nn.Conv2d(hidden, hidden, kernel, padding=pad), nn.ReLU(),
            nn.Conv2d(hidden, img_channels, kernel, padding=pad))

    def forward(self, noise: Tensor, cond: Tensor) -> Tensor:
        coarse, labels = split_condition(cond, self.img_channels, self.n_classes)
        if noise.shape != (coarse.shape[0], 1, self.size, self.size) or coarse.shape[-1] != self.size:
            raise ValueError(f"level {self.size}x{self.size} expects noise (N, 1, {self.size}, {self.size}) and a coarse "
                             f"image of that size; got {tuple(noise.shape)} and {tuple(coarse.shape)}")
        parts = [noise, coarse] + ([self.class_plane(labels)] if self.n_classes else [])
        return self.net(torch.cat(parts, 1))


class LevelDiscriminator(nn.Module):
    """D_k(h_k, l_k [, class]): judges the residual added onto its coarse image, i.e. a full image (Sec. 3)."""

    def __init__(self, img_channels: int = 1, size: int = 16, hidden: int = 32, kernel: int = 5,
                 n_classes: int = 0, dropout: float = 0.3) -> None:
        super().__init__()
        self.img_channels, self.size, self.n_classes = img_channels, size, n_classes
        self.class_plane = _ClassPlane(n_classes, size) if n_classes else None
        c_in = img_channels + (1 if n_classes else 0)
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv2d(c_in, hidden, kernel, padding=pad), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, hidden, kernel, stride=2, padding=pad), nn.LeakyReLU(0.2),
            nn.Dropout(dropout), nn.Flatten(),
            nn.Linear(hidden * (size // 2) ** 2, 1))

    def forward(self, residual: Tensor, cond: Tensor) -> Tensor:
        coarse, labels = split_condition(cond, self.img_channels, self.n_classes)
        x = residual + coarse  # the official code's CAddTable: D sees the reconstructed image
        if self.n_classes:
            x = torch.cat([x, self.class_plane(labels)], 1)
        return self.net(x).squeeze(1)


class LapGAN(nn.Module):
    """All levels of a LapGAN, coarse to fine: ``generators[0]`` is the base GAN at ``sizes[0]``.

    Args:
        img_channels: 1 (MNIST) or 3.
        resolution: final size; ``levels`` sizes from resolution / 2**(levels-1) up (32 with 3 levels: 8, 16, 32).
        z_dim, base_hidden: the base GAN's latent size and width (MLP hidden units, or conv channels).
        hidden: conv width per finer level (one int, or one per level above the base).
        kernel: conv kernel size of the level networks.
        n_classes: 0 for unconditional, else class-conditional at every level.
        base: ``'mlp'`` (the official code's base; ``base_hidden`` units) or ``'conv'`` (a small DCGAN-style
            base at 8x8; ``base_hidden`` is its channel width).
    """

    def __init__(self, img_channels: int = 1, resolution: int = 32, levels: int = 3, z_dim: int = 100,
                 base_hidden: int = 512, hidden: Sequence[int] | int = (32, 16), kernel: int = 5,
                 n_classes: int = 0, base: str = "mlp") -> None:
        super().__init__()
        if levels < 1 or resolution % 2 ** (levels - 1) or resolution // 2 ** (levels - 1) < 4:
            raise ValueError(f"cannot split {resolution}x{resolution} into {levels} levels of at least 4x4; "
                             "use e.g. resolution=32, levels=3 (8 -> 16 -> 32)")
        check_img_channels(img_channels)
        widths = [hidden] * (levels - 1) if isinstance(hidden, int) else list(hidden)
        if len(widths) != levels - 1:
            raise ValueError(f"hidden needs one width per level above the base ({levels - 1}), got {widths}")
        bases = {"mlp": (BaseGenerator, BaseDiscriminator), "conv": (ConvBaseGenerator, ConvBaseDiscriminator)}
        if base not in bases:
            raise ValueError(f"unknown base {base!r}; use 'mlp' (official code) or 'conv' (8x8 DCGAN-style)")
        self.img_channels, self.resolution, self.levels, self.n_classes = img_channels, resolution, levels, n_classes
        self.sizes = [resolution // 2 ** (levels - 1 - k) for k in range(levels)]
        base_g, base_d = bases[base]
        self.generators = nn.ModuleList([base_g(z_dim, img_channels, self.sizes[0], base_hidden, n_classes)] + [
            LevelGenerator(img_channels, s, w, kernel, n_classes) for s, w in zip(self.sizes[1:], widths)])
        self.discriminators = nn.ModuleList([base_d(img_channels, self.sizes[0], base_hidden, n_classes)] + [
            LevelDiscriminator(img_channels, s, w, kernel, n_classes) for s, w in zip(self.sizes[1:], widths)])

    def noise(self, k: int, n: int, device: Optional[torch.device] = None,
              generator: Optional[torch.Generator] = None) -> Tensor:
        """Level k's noise: N(0, 1) z for the base, one U(-1, 1) plane for finer levels (official code)."""
        device = device or next(self.parameters()).device
        if k == 0:
            return torch.randn(n, self.generators[0].z_dim, generator=generator).to(device)
        s = self.sizes[k]
        return (torch.rand(n, 1, s, s, generator=generator) * 2 - 1).to(device)

    @torch.no_grad()
    def sample_levels(self, n: int, labels: Optional[Tensor] = None, generators: Optional[Sequence[nn.Module]] = None,
                      generator: Optional[torch.Generator] = None) -> Dict[str, List[Tensor]]:
        """Coarse-to-fine sampling, keeping every stage: {'images': [I~_8, I~_16, I~_32],
        'coarse': [l_16, l_32], 'residuals': [h~_16, h~_32]} (lists coarse to fine).

        ``generators`` overrides the modules used per level (e.g. the trainers' EMA copies).
        """
        gens = list(generators) if generators is not None else list(self.generators)
        if len(gens) != self.levels:
            raise ValueError(f"need one generator per level ({self.levels}), got {len(gens)}")
        if self.n_classes and labels is None:
            raise ValueError("this LapGAN is class-conditional: pass labels (N,) with values in "
                             f"[0, {self.n_classes})")
        device = next(self.parameters()).device
        labels = None if labels is None else labels.to(device)
        with eval_mode(*gens):  # BatchNorm (conv base) must use its running statistics, and sampling must not update them
            image = gens[0](self.noise(0, n, device, generator), labels) if self.n_classes else gens[0](
                self.noise(0, n, device, generator))
            out: Dict[str, List[Tensor]] = {"images": [image], "coarse": [], "residuals": []}
            for k in range(1, self.levels):
                coarse = upsample(image)
                residual = gens[k](self.noise(k, n, device, generator), make_condition(coarse, labels))
                image = coarse + residual  # eq. 3: I~_k = u(I~_{k+1}) + h~_k
                out["coarse"].append(coarse)
                out["residuals"].append(residual)
                out["images"].append(image)
        return out

    def sample(self, n: int, labels: Optional[Tensor] = None, generators: Optional[Sequence[nn.Module]] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """n full-resolution samples, clamped to [-1, 1]."""
        return self.sample_levels(n, labels, generators, generator)["images"][-1].clamp(-1, 1)


def level_data(images: Tensor, levels: int, k: int, labels: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """Training pairs for level k (0 = base) from real images: base -> (I_K, labels);
    finer -> (h, cond) with h the real residual and cond the up-sampled real coarse image (+ label plane)."""
    if not 0 <= k < levels:
        raise ValueError(f"k must be in [0, {levels - 1}] (0 = the coarsest, base level), got {k}")
    pyramid = laplacian_pyramid(images, levels)  # [h_0 (finest), ..., I_K]
    if k == 0:
        return pyramid[-1], labels
    coarse_real = _gaussian_level(images, levels - k)  # I_{k+1} in the paper's finest-first numbering
    return pyramid[levels - 1 - k], make_condition(upsample(coarse_real), labels)


def _gaussian_level(images: Tensor, halvings: int) -> Tensor:
    from ganlib.pyramid import gaussian_pyramid
    return gaussian_pyramid(images, halvings + 1)[-1]


def _check_labels(labels: Optional[Tensor], n_classes: int, n: int) -> Tensor:
    if labels is None:
        raise ValueError(f"this model is class-conditional ({n_classes} classes): pass labels")
    if labels.shape != (n,) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be (N,) = ({n},) ints in [0, {n_classes}), got shape {tuple(labels.shape)}")
    return labels


def _one_hot(labels: Optional[Tensor], n_classes: int, n: int) -> Tensor:
    return F.one_hot(_check_labels(labels, n_classes, n).long(), n_classes).float()
