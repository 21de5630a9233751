"""Training one LapGAN level (Denton et al. 2015): each level on its own, on pyramids of real images.

The batch source yields ``(h_k, cond)`` with ``cond`` the up-sampled coarse *real* image (plus a class plane),
so the Trainer's usual ``G(z, y)`` / ``D(x, y)`` calls are ``G_k(noise, l_k)`` / ``D_k(h_k, l_k)``; the models
and the pyramid data are ``ganlib.models.lapgan``.
"""
from __future__ import annotations

from typing import Any, Optional

from torch import Tensor

from ganlib.data import TensorSource
from ganlib.losses import discriminator_bce, generator_nonsaturating
from ganlib.models.lapgan import LapGAN, level_data
from ganlib.train import Trainer


def make_level_trainer(model: LapGAN, k: int, images: Tensor, labels: Optional[Tensor] = None, *,
                       batch_size: int = 64, lr: float = 2e-4, seed: int = 0, ema_decay: Optional[float] = None,
                       **kwargs: Any) -> Trainer:
    """A ``Trainer`` for level k alone on real pyramids, with BCE + non-saturating G loss and Adam(lr, (0.5, 0.999))."""
    if model.n_classes and labels is None:
        raise ValueError("this LapGAN is class-conditional: pass the labels of the training images")
    x, cond = level_data(images, model.levels, k, labels if model.n_classes else None)
    device = kwargs.pop("device", None) or next(model.parameters()).device
    latent = None if k == 0 else (lambda n: model.noise(k, n, device))
    return Trainer(model.generators[k], model.discriminators[k], TensorSource(x, cond, batch_size, seed, device),
                   d_loss=discriminator_bce, g_loss=generator_nonsaturating, lr=lr, betas=(0.5, 0.999),
                   ema_decay=ema_decay, latent=latent, device=device, **kwargs)
