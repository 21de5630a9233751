"""Conditional GAN (Mirza & Osindero 2014) on the DCGAN backbone, with three ways to feed the label.

``conditioning`` picks how the class label y reaches both networks:

* ``'onehot'``  -- the paper's idea in convolutional form: G sees [z, onehot(y)]; D sees the image plus
  ``n_classes`` extra input planes, the plane of class y all ones and the rest zeros.
* ``'embed'``   -- a learned embedding: G sees [z, E_G(y)]; D sees one extra plane, a learned
  S x S map per class (embedding -> linear -> reshape), as many Keras/PyTorch tutorials do.
* ``'projection'`` -- Miyato & Koyama 2018 (eq. 3): D(x, y) = psi(phi(x)) + <E_D(y), phi(x)>, with phi(x)
  the globally pooled conv features of the same DCGAN backbone; the generator uses class-conditional
  BatchNorm (gamma_y, beta_y per class; de Vries et al. 2017), as the paper's does. The paper's D is
  spectrally normalised; ours keeps DCGAN's BatchNorm so the three modes differ only in the label path.

All three work for any class count: 10 for MNIST, 4 for ``ganlib.data.shapes`` (its ``.labels``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.models.checks import check_images, check_latent
from ganlib.models.dcgan import Discriminator, Generator, check_size, dcgan_init_

MODES = ("onehot", "embed", "projection")


def _check_mode(conditioning: str, n_classes: int) -> None:
    if conditioning not in MODES:
        raise ValueError(f"unknown conditioning {conditioning!r}; choose one of {', '.join(MODES)}")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")


def _check_labels(y: Tensor, n: int, n_classes: int, who: str) -> Tensor:
    if not torch.is_tensor(y) or y.dim() != 1 or len(y) != n or y.dtype.is_floating_point:
        shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(f"{who} expects integer class labels of shape ({n},), got {shape}; pass class indices, "
                         "not one-hot vectors")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{who}: labels must be in [0, {n_classes - 1}], got values {int(y.min())}..{int(y.max())}")
    return y.long()


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a per-class scale and shift (gamma_y, beta_y)."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(n_classes, channels)
        self.beta = nn.Embedding(n_classes, channels)
        nn.init.normal_(self.gamma.weight, 1.0, 0.02)  # DCGAN's gamma ~ N(1, 0.02), per class
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class ConditionalGenerator(nn.Module):
    """(z, y) -> image: a DCGAN ``Generator`` that also reads the class label.

    Args:
        n_classes: number of classes (10 for MNIST, 4 for the shapes dataset).
        z_dim, image_size, channels, width: as ``dcgan.Generator``.
        conditioning: 'onehot', 'embed' or 'projection' (see the module docstring).
        embed_dim: size of the learned label embedding for 'embed' (default: n_classes).
    """

    def __init__(self, n_classes: int = 10, z_dim: int = 100, image_size: int = 28, channels: int = 1,
                 width: int = 64, conditioning: str = "onehot", embed_dim: Optional[int] = None) -> None:
        super().__init__()
        _check_mode(conditioning, n_classes)
        self.n_classes, self.conditioning, self.z_dim = n_classes, conditioning, z_dim
        self.image_size, self.channels = image_size, channels
        embed_dim = embed_dim or n_classes
        extra = {"onehot": n_classes, "embed": embed_dim, "projection": 0}[conditioning]
        self.backbone = Generator(z_dim, image_size, channels, width, in_extra=extra)
        if conditioning == "embed":
            self.embed = nn.Embedding(n_classes, embed_dim)
        if conditioning == "projection":  # swap each BatchNorm for a class-conditional one
            for i, layer in enumerate(self.backbone.net):
                if isinstance(layer, nn.BatchNorm2d):
                    self.backbone.net[i] = ConditionalBatchNorm2d(layer.num_features, n_classes)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        check_latent(z, self, self.z_dim)
        y = _check_labels(y, len(z), self.n_classes, "ConditionalGenerator")
        if self.conditioning == "onehot":
            return self.backbone(torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], 1))
        if self.conditioning == "embed":
            return self.backbone(torch.cat([z, self.embed(y)], 1))
        h = z[:, :, None, None]
        for layer in self.backbone.net:
            h = layer(h, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(h)
        return h


class ConditionalDiscriminator(nn.Module):
    """(x, y) -> one logit per image: a DCGAN ``Discriminator`` that also reads the class label.

    Args: as ``ConditionalGenerator`` (``width`` is ``ndf``).
    """

    def __init__(self, n_classes: int = 10, image_size: int = 28, channels: int = 1, width: int = 64,
                 conditioning: str = "onehot", embed_dim: Optional[int] = None) -> None:
        super().__init__()
        _check_mode(conditioning, n_classes)
        check_size(image_size, channels, width)
        self.n_classes, self.conditioning = n_classes, conditioning
        self.image_size, self.channels = image_size, channels
        extra = {"onehot": n_classes, "embed": 1, "projection": 0}[conditioning]
        self.backbone = Discriminator(image_size, channels, width, in_extra=extra)
        if conditioning == "embed":
            embed_dim = embed_dim or n_classes
            self.embed = nn.Sequential(nn.Embedding(n_classes, embed_dim), nn.Linear(embed_dim, image_size ** 2))
        if conditioning == "projection":
            c = self.backbone.feature_channels
            del self.backbone.out
            self.psi = nn.Linear(c, 1)                  # the unconditional term psi(phi(x))
            self.embed = nn.Embedding(n_classes, c)     # V in eq. 3: one vector per class
            # DCGAN's N(0, 0.02) output-layer init; the default (much larger) init made D win at once.
            for w in (self.psi.weight, self.embed.weight):
                nn.init.normal_(w, 0.0, 0.02)
            nn.init.zeros_(self.psi.bias)
        dcgan_init_(self.backbone)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_images(x, self, self.channels, self.image_size)
        y = _check_labels(y, len(x), self.n_classes, "ConditionalDiscriminator")
        s = self.image_size
        if self.conditioning == "onehot":
            planes = F.one_hot(y, self.n_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, s, s)
            return self.backbone.out(self.backbone.features(torch.cat([x, planes], 1))).flatten()
        if self.conditioning == "embed":
            plane = self.embed(y).view(-1, 1, s, s)
            return self.backbone.out(self.backbone.features(torch.cat([x, plane], 1))).flatten()
        # Global *mean* pooling (the paper's ResNets sum): with BatchNorm instead of spectral norm in the
        # backbone, summing over 7x7 positions makes the logits 49x larger and D overpowers G at once.
        phi = self.backbone.features(x).mean(dim=(2, 3))
        return self.psi(phi).flatten() + (self.embed(y) * phi).sum(dim=1)
