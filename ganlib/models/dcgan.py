"""DCGAN (Radford, Metz & Chintala 2015): all-convolutional G and D for 28/32/64-px images.

Faithful to the paper's guidelines (Sec. 3) and to pytorch/examples ``dcgan/main.py``:
* G: a 1x1 latent grows by transposed convolutions (kernel 4, stride 2, padding 1), BatchNorm + ReLU
  after each, Tanh on the output; no fully connected hidden layers, no pooling.
* D: strided convolutions (4-2-1), LeakyReLU(0.2), BatchNorm on every layer but the first; the last
  conv collapses the map to one **logit** (no Sigmoid: the losses in ``ganlib.losses`` take logits).
* init: conv weights N(0, 0.02); BatchNorm gamma N(1, 0.02), beta 0.

Sizes: a power of two >= 16 starts from a 4x4 map (64 px: 4-8-16-32-64, as pytorch/examples); 28 px
(MNIST without padding) starts from 7x7 (7-14-28). ``batchnorm`` and ``activation`` exist for the
chapter-06 ablation; the defaults are the paper's.
"""
from __future__ import annotations

from typing import List, Tuple

from torch import Tensor, nn

from ganlib.models.checks import check_images, check_latent

G_ACTIVATIONS = ("relu", "leaky_relu")
D_ACTIVATIONS = ("leaky_relu", "relu")


def _act(name: str, allowed: Tuple[str, ...], who: str) -> nn.Module:
    if name not in allowed:
        raise ValueError(f"{who}: unknown activation {name!r}; choose one of {', '.join(allowed)}")
    return nn.ReLU() if name == "relu" else nn.LeakyReLU(0.2)


def check_size(image_size: int, channels: int, width: int) -> None:
    """Reject sizes the 4-2-1 ladder cannot build, with what to do instead."""
    powers = (16, 32, 64, 128, 256)
    if image_size != 28 and image_size not in powers:
        raise ValueError(f"image_size must be 28 or a power of two in {powers}, got {image_size}; "
                         "for MNIST use 28, or 32 with ganlib.data.mnist(size=32)")
    for name, value in (("channels", channels), ("width", width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def ladder(image_size: int, width: int) -> Tuple[int, List[int]]:
    """The start resolution and the channel count at each resolution, coarsest first.

    64 px, width 64 -> (4, [512, 256, 128, 64]): the widest map is at 4x4, width doubles per halving.
    """
    start = 7 if image_size == 28 else 4
    levels = (image_size // start).bit_length() - 1  # number of 2x steps from start to image_size
    return start, [width * 2 ** (levels - 1 - i) for i in range(levels)]


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN init (pytorch/examples ``weights_init``): conv N(0, 0.02); BatchNorm gamma N(1, 0.02), beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (N, z_dim) -> image (N, channels, S, S) in [-1, 1].

    Args:
        z_dim: latent size (100 in the paper).
        image_size: 28, or a power of two >= 16 (32 for padded MNIST, 64 as in the paper).
        channels: 1 (MNIST) or 3 (RGB).
        width: channels at full resolution (``ngf``; 64 in pytorch/examples), doubled at each halving.
        batchnorm: BatchNorm after every layer but the output (paper); False for the ablation.
        activation: 'relu' (paper) or 'leaky_relu'.
        in_extra: extra latent channels concatenated to z (used by the conditional generator).
    """

    def __init__(self, z_dim: int = 100, image_size: int = 64, channels: int = 3, width: int = 64,
                 batchnorm: bool = True, activation: str = "relu", in_extra: int = 0) -> None:
        super().__init__()
        check_size(image_size, channels, width)
        if not isinstance(z_dim, int) or z_dim < 1:
            raise ValueError(f"z_dim must be a positive int, got {z_dim!r}")
        _act(activation, G_ACTIVATIONS, "Generator")
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        start, widths = ladder(image_size, width)
        # Project-and-reshape done as a transposed conv on the 1x1 latent, as in pytorch/examples.
        layers: List[nn.Module] = [nn.ConvTranspose2d(z_dim + in_extra, widths[0], start, 1, 0, bias=not batchnorm)]
        for c_in, c_out in zip(widths, widths[1:] + [None]):
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_in))
            layers.append(_act(activation, G_ACTIVATIONS, "Generator"))
            if c_out is None:  # last layer: to pixels, no BatchNorm, Tanh (paper Sec. 3)
                layers += [nn.ConvTranspose2d(c_in, channels, 4, 2, 1, bias=False), nn.Tanh()]
            else:
                layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not batchnorm))
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        check_latent(z, self, self.net[0].in_channels, spatial=True)  # z_dim (+ the conditional G's label)
        return self.net(z[:, :, None, None] if z.dim() == 2 else z)


class Discriminator(nn.Module):
    """image (N, channels, S, S) -> one logit per image (N,).

    Args:
        image_size, channels, width: as for ``Generator`` (``ndf`` = width).
        batchnorm: BatchNorm on every conv but the first and the last (paper); False for the ablation.
        activation: 'leaky_relu' (slope 0.2, paper) or 'relu' for the ablation.
        in_extra: extra input channels concatenated to the image (the one-hot conditional D).
    """

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, batchnorm: bool = True,
                 activation: str = "leaky_relu", in_extra: int = 0) -> None:
        super().__init__()
        check_size(image_size, channels, width)
        _act(activation, D_ACTIVATIONS, "Discriminator")
        self.image_size, self.channels = image_size, channels
        start, widths = ladder(image_size, width)
        widths = widths[::-1]  # finest first
        layers: List[nn.Module] = [nn.Conv2d(channels + in_extra, widths[0], 4, 2, 1, bias=False),
                                   _act(activation, D_ACTIVATIONS, "Discriminator")]  # no BN on D's input layer
        for c_in, c_out in zip(widths, widths[1:]):
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(_act(activation, D_ACTIVATIONS, "Discriminator"))
        self.features = nn.Sequential(*layers)   # (N, widths[-1], start, start)
        self.out = nn.Conv2d(widths[-1], 1, start, 1, 0, bias=False)
        self.feature_channels = widths[-1]
        dcgan_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self, self.channels, self.image_size)
        return self.out(self.features(x)).flatten()
