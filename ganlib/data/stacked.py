"""Stacked MNIST (Metz et al. 2017; VEEGAN, PacGAN): three digits in the R, G and B channels -> 1,000 modes.

Each image stacks three independently drawn bundled digits; its label is the triple read as a
three-digit number, ``100 * red + 10 * green + blue`` in [0, 999]. A generator that covers all
1,000 triples equally often has learned every mode. The mode count and KL(generated || uniform)
are computed by classifying each channel with the shipped MNIST classifier
(``ganlib.metrics.classifier.stacked_mode_stats``).

Images are drawn on the fly from a seeded generator, so ``stacked_sampler`` plugs into
``ganlib.data.SamplerSource`` and a run never stores 128,000 stacked images.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from ganlib.data.mnist import mnist

N_MODES = 1000


def encode(digits: Tensor) -> Tensor:
    """(N, 3) digits (red, green, blue) -> labels 100 r + 10 g + b, (N,)."""
    if digits.dim() != 2 or digits.shape[1] != 3:
        raise ValueError(f"encode expects (N, 3) digit triples, got {tuple(digits.shape)}")
    if len(digits) and (int(digits.min()) < 0 or int(digits.max()) > 9):
        raise ValueError("digits must be in 0..9")
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def decode(labels: Tensor) -> Tensor:
    """Labels in [0, 999] (N,) -> (N, 3) digits (red, green, blue)."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(f"decode expects integer labels of shape (N,), got {tuple(labels.shape)} {labels.dtype}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= N_MODES):
        raise ValueError(f"Stacked MNIST labels are in [0, {N_MODES - 1}]")
    return torch.stack([labels // 100, labels // 10 % 10, labels % 10], dim=1)


def stacked_sampler(size: int = 28, split: str = "train") -> Callable[..., Tuple[Tensor, Tensor]]:
    """``sample(n, generator) -> (images (n, 3, size, size) in [-1, 1], labels (n,))`` over the bundled digits."""
    digits, digit_labels = mnist(size=size, split=split)

    def sample(n: int, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        pick = torch.randint(len(digits), (n, 3), generator=generator)
        images = digits[pick].squeeze(2)        # (n, 3, S, S): one digit per colour channel
        return images, encode(digit_labels[pick])

    return sample


def stacked_mnist(n: int, size: int = 28, split: str = "train", seed: int = 0) -> Tuple[Tensor, Tensor]:
    """``n`` Stacked MNIST images (n, 3, size, size) in [-1, 1] and their labels in [0, 999], from ``seed``."""
    return stacked_sampler(size, split)(n, torch.Generator().manual_seed(seed))


def images_only(sample: Callable[..., Tuple[Tensor, Tensor]]) -> Callable[..., Tensor]:
    """Drop the labels, for unconditional training with ``SamplerSource``."""
    return lambda n, generator=None: sample(n, generator)[0]
