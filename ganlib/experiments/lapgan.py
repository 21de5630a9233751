"""Training one LapGAN level (Denton et al. 2015): each level on its own, on pyramids of real images.

The batch source yields ``(h_k, cond)`` with ``cond`` the up-sampled coarse *real* image (plus a class plane),
so the Trainer's usual ``G(z, y)`` / ``D(x, y)`` calls are ``G_k(noise, l_k)`` / ``D_k(h_k, l_k)``; the models
and the pyramid data are ``ganlib.models.lapgan``. ``fit_levels_for`` trains every level for a share of a
wall-clock budget (chapter 09 compares PGGAN and LapGAN at equal training time).
"""
from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

from torch import Tensor, nn

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


def fit_levels_for(model: LapGAN, images: Tensor, seconds: float, *, shares: Sequence[float] = (0.42, 0.35, 0.23),
                   lrs: Sequence[float] = (5e-4, 2.5e-3, 2.5e-3), batch_size: int = 64,
                   ema_decay: Optional[float] = None, chunk: int = 20,
                   clock: Callable[[], float] = time.perf_counter) -> Tuple[List[nn.Module], List[int], float]:
    """Train level k alone (``make_level_trainer``, learning rate ``lrs[k]``) in chunks of ``chunk`` G steps until
    ``shares[k] * seconds`` have passed on ``clock``, coarsest level first.

    The defaults are chapter 08's: its step counts split a three-level run's time about 42/35/23 %, and its rates.
    A level stops at the first chunk boundary past its share, so it may overrun it by up to one chunk.
    Returns (each level's EMA generator, or G without ``ema_decay``; G steps per level; total seconds on ``clock``,
    building the trainers included), ready for ``model.sample(n, generators=...)``.
    """
    if len(shares) != len(model.generators) or len(lrs) != len(model.generators):
        raise ValueError(f"need one share and one lr per level ({len(model.generators)}), got {len(shares)} and "
                         f"{len(lrs)}")
    if not seconds >= 0 or any(not s >= 0 for s in shares) or chunk < 1:
        raise ValueError(f"need seconds >= 0, shares >= 0 and chunk >= 1, got {seconds}, {list(shares)}, {chunk}")
    start, generators, steps = clock(), [], []
    for k, (share, lr) in enumerate(zip(shares, lrs)):
        trainer = make_level_trainer(model, k, images, batch_size=batch_size, lr=lr, ema_decay=ema_decay,
                                     progress=False)
        level_start = clock()
        while True:  # at least one chunk, even for a zero share
            trainer.fit(trainer.step + chunk)
            if clock() - level_start >= share * seconds:
                break
        generators.append(trainer.G_ema if trainer.G_ema is not None else trainer.G)
        steps.append(trainer.step)
    return generators, steps, clock() - start
