"""The training-tips lab of chapter 05: a tiny conv GAN on the bundled MNIST whose every tip is a switch.

``TipConfig`` holds the switches (output squashing and data range, generator loss, D activation, D
pooling, soft/noisy labels, BatchNorm in D with separate or joint real/fake batches); ``run_tip`` trains
one config and scores it with the Fréchet distance between generated and held-out digits in pixel space
(digits average-pooled to 14x14, so 196 features), the same metric for every arm.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib import losses
from ganlib.data import TensorSource, mnist
from ganlib.metrics import frechet_distance
from ganlib.runtime import seed_everything
from ganlib.train import Trainer


@dataclass
class TipConfig:
    """One arm of the ablation. The defaults are the 'all tips on' baseline."""

    output: str = "tanh"            # 'tanh' with data in [-1, 1], or 'sigmoid' with data in [0, 1]
    g_loss: str = "ns"              # 'ns' (label flip for G) or 'minimax'
    d_activation: str = "leaky_relu"  # or 'relu'
    pool: str = "avg"               # D downsampling: 'avg' or 'max'
    soft_labels: bool = False       # real ~ U[0.7, 1.2] (clipped to 1), fake ~ U[0, 0.3], 5 % flipped
    d_batchnorm: bool = False
    joint_d_batch: bool = False     # real and fake through D as one batch (only matters with BatchNorm)
    steps: int = 400
    batch_size: int = 64
    z_dim: int = 32
    lr: float = 2e-4
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {"output": ("tanh", "sigmoid"), "g_loss": ("ns", "minimax"), "d_activation": ("leaky_relu", "relu"),
                  "pool": ("avg", "max")}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> "TipConfig":
        return dataclasses.replace(self, **changes)


SIZE = 14  # digits average-pooled from 28x28: the whole ablation must fit minutes of a shared CPU


def digits(split: str) -> Tensor:
    """Bundled MNIST at 14x14 in [-1, 1]."""
    x, _ = mnist(28, split)
    return F.avg_pool2d(x, 2)


class TinyG(nn.Module):
    """z -> 32x7x7 -> upsample, conv 3x3 -> 1x14x14, squashed by tanh or sigmoid (BN + ReLU inside)."""

    def __init__(self, z_dim: int = 32, output: str = "tanh") -> None:
        super().__init__()
        self.z_dim = z_dim
        self.fc = nn.Sequential(nn.Linear(z_dim, 32 * 7 * 7), nn.BatchNorm1d(32 * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(32, 16, 3, padding=1), nn.BatchNorm2d(16),
                                 nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))
        self.squash = torch.tanh if output == "tanh" else torch.sigmoid

    def forward(self, z: Tensor) -> Tensor:
        return self.squash(self.net(self.fc(z).view(-1, 32, 7, 7)))


class TinyD(nn.Module):
    """(conv 3x3, [BN], act, pool 2) x 2 -> linear logit, on 14x14 digits."""

    def __init__(self, activation: str = "leaky_relu", pool: str = "avg", batchnorm: bool = False) -> None:
        super().__init__()
        act = (lambda: nn.LeakyReLU(0.2)) if activation == "leaky_relu" else (lambda: nn.ReLU())
        pooling = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        norm = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), act(), pooling(2),
                                 nn.Conv2d(16, 32, 3, padding=1), norm(32), act(), pooling(2))
        self.fc = nn.Linear(32 * 3 * 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1:] != (1, SIZE, SIZE):
            raise ValueError(f"TinyD expects (N, 1, {SIZE}, {SIZE}) digits, got {tuple(x.shape)}")
        return self.fc(self.net(x).flatten(1))[:, 0]


def pixel_fd(fake: Tensor, real: Tensor) -> float:
    """Fréchet distance between the raw 14x14 pixels (196 features), both given in [-1, 1]."""
    import warnings

    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings():
        # border pixels are (almost) constant, so the covariance product is singular; sqrtm still returns
        # a usable root and frechet_distance falls back to a nudged product when it does not
        warnings.simplefilter("ignore", LinAlgWarning)
        return frechet_distance(fake.detach().float().cpu().flatten(1), real.detach().float().cpu().flatten(1))


def run_tip(cfg: TipConfig, device: Optional[torch.device] = None, n_eval: int = 1000) -> Dict[str, float]:
    """Train one arm and return {'fd': pixel FD to held-out digits (lower is better), 'seconds': ...}."""
    seed_everything(cfg.seed)
    dev = device or torch.device("cpu")
    x, held = digits("train"), digits("heldout")
    if cfg.output == "sigmoid":  # the 'before' arm: data in [0, 1] to match a sigmoid output
        x = (x + 1) / 2
    G, D = TinyG(cfg.z_dim, cfg.output), TinyD(cfg.d_activation, cfg.pool, cfg.d_batchnorm)
    g_loss = losses.generator_nonsaturating if cfg.g_loss == "ns" else losses.generator_minimax
    d_loss = losses.discriminator_bce
    if cfg.soft_labels:
        def d_loss(real: Tensor, fake: Tensor) -> Tensor:
            return losses.discriminator_bce(real, fake, losses.soft_noisy_labels(len(real), True, 0.05, real.device),
                                            losses.soft_noisy_labels(len(fake), False, 0.05, fake.device))
    trainer = Trainer(G, D, TensorSource(x, batch_size=cfg.batch_size, seed=cfg.seed, device=dev), d_loss=d_loss,
                      g_loss=g_loss, lr=cfg.lr, betas=(0.5, 0.999), joint_d_batch=cfg.joint_d_batch,
                      progress=False, log_every=50, device=dev)
    start = time.perf_counter()
    trainer.fit(cfg.steps)
    seconds = time.perf_counter() - start
    G.eval()
    with torch.no_grad():
        fake = G(torch.randn(n_eval, cfg.z_dim, generator=torch.Generator().manual_seed(99)).to(dev))
    if cfg.output == "sigmoid":
        fake = fake * 2 - 1  # score every arm in the same [-1, 1] units
    return {"fd": pixel_fd(fake, held[:n_eval]), "seconds": seconds, "trainer": trainer}
