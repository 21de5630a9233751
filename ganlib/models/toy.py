"""Small MLPs for 1-D and 2-D toy distributions (the first chapters and the 2-D benchmark)."""
from __future__ import annotations

from torch import Tensor, nn

from ganlib.models.checks import check_latent

ACTIVATIONS = {"relu": lambda: nn.ReLU(), "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": lambda: nn.Tanh()}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(in_dim: int, out_dim: int, hidden: int, depth: int, activation: str, batchnorm: bool = False) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden``; optional BatchNorm after each hidden linear layer."""
    for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden), ("depth", depth)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden)] + ([nn.BatchNorm1d(hidden)] if batchnorm else []) + [_activation(activation)]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """z (z_dim) -> MLP -> a point in R^out_dim. WGAN-GP's toy G is 3 ReLU layers of 512 (gan_toy.py)."""

    def __init__(self, z_dim: int = 2, out_dim: int = 2, hidden: int = 512, depth: int = 3,
                 activation: str = "relu", batchnorm: bool = False) -> None:
        super().__init__()
        self.z_dim, self.out_dim = z_dim, out_dim
        self.net = mlp(z_dim, out_dim, hidden, depth, activation, batchnorm)

    def forward(self, z: Tensor) -> Tensor:
        check_latent(z, self, self.z_dim)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """A point -> MLP -> one raw score (a logit, or a critic value). No sigmoid: losses take logits.

    ``pac`` > 1 is PacGAN (Lin et al. 2018, Sec. 3): D judges packs of ``pac`` samples of one kind, consecutive
    rows concatenated into one input of ``pac * in_dim``, so (N, in_dim) in gives N / pac scores out.
    """

    def __init__(self, in_dim: int = 2, hidden: int = 512, depth: int = 3, activation: str = "relu",
                 batchnorm: bool = False, pac: int = 1) -> None:
        super().__init__()
        if not isinstance(pac, int) or pac < 1:
            raise ValueError(f"pac must be a positive int, got {pac!r}")
        self.in_dim, self.pac = in_dim, pac
        self.net = mlp(in_dim * pac, 1, hidden, depth, activation, batchnorm)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPDiscriminator expects inputs of shape (N, {self.in_dim}), got {tuple(x.shape)}")
        if x.shape[0] % self.pac:
            raise ValueError(f"PacGAN with pac={self.pac} needs a batch that divides into packs, got {x.shape[0]} rows")
        return self.net(x.reshape(-1, self.pac * self.in_dim))[:, 0]
