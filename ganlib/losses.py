"""GAN losses and penalties as pure functions on discriminator logits or critic scores.

Every function takes raw outputs (no sigmoid applied) and returns a scalar to *minimise*. Penalties
take the critic and the batches and return the unweighted penalty; the caller multiplies by its
weight (lambda, gamma), so the training step reads like the paper's equation::

    d_loss = critic_wasserstein(D(real), D(fake)) + 10 * gradient_penalty(D, real, fake)

``r1_regularizer(gamma)`` is StyleGAN's R1 already weighted, in the form the ``Trainer``'s ``d_penalty`` takes.

NaN or inf inputs pass straight through every loss (a NaN score gives a NaN loss): checking every call
would cost a device sync per step, and the ``Trainer``'s guard already stops training at the first
non-finite loss, naming the step and the last good checkpoint. Call them outside the Trainer? Check
``torch.isfinite(loss)`` yourself.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Target = Union[float, Tensor]

# Least-squares GAN target codings (a = fake, b = real, c = what G wants D to say about fakes).
LSGAN_CODINGS: Dict[str, Tuple[float, float, float]] = {
    "paper": (-1.0, 1.0, 0.0),    # Mao et al. 2017, Sec. 3.2: b - c = 1, b - a = 2 gives Pearson chi^2
    "official": (0.0, 1.0, 1.0),  # xudonmao/LSGAN code: the 0-1 coding most implementations use
}


def _scores(x: Tensor, name: str) -> Tensor:
    """Accept (N,) or (N, 1) outputs; reject anything else with a useful message."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor of discriminator outputs, got {type(x).__name__}")
    if x.dim() == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N,) or (N, 1) -- one score per sample -- got {tuple(x.shape)}; "
                         "did the discriminator forget to flatten its output?")
    return x


def _targets(target: Target, like: Tensor, name: str) -> Tensor:
    t = torch.as_tensor(target, dtype=like.dtype, device=like.device)
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] (a probability that the sample is real), got values in "
                         f"[{t.min().item():.3g}, {t.max().item():.3g}]; soft_noisy_labels() clips the tip's 1.2 to 1")
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != like.shape[0]):
        raise ValueError(f"{name} must be a number or one label per sample ({like.shape[0]}), got {tuple(t.shape)}")
    return t.expand_as(like)


# --- the original GAN (Goodfellow et al. 2014) -------------------------------------------------------

def discriminator_bce(real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0,
                      fake_target: Target = 0.0) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] (eq. 1), as BCE on logits; targets may be soft/noisy per sample."""
    real_logits, fake_logits = _scores(real_logits, "real_logits"), _scores(fake_logits, "fake_logits")
    return (F.binary_cross_entropy_with_logits(real_logits, _targets(real_target, real_logits, "real_target"))
            + F.binary_cross_entropy_with_logits(fake_logits, _targets(fake_target, fake_logits, "fake_target")))


def generator_minimax(fake_logits: Tensor) -> Tensor:
    """The minimax generator loss E[log(1 - D(G(z)))] = -E[softplus(logit)]; saturates when D wins."""
    return -F.softplus(_scores(fake_logits, "fake_logits")).mean()


def generator_nonsaturating(fake_logits: Tensor) -> Tensor:
    """The non-saturating loss -E[log D(G(z))] = E[softplus(-logit)] (Goodfellow et al. 2014, Sec. 3)."""
    return F.softplus(-_scores(fake_logits, "fake_logits")).mean()


# --- Wasserstein GAN (Arjovsky et al. 2017) ---------------------------------------------------------

def critic_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """E[f(G(z))] - E[f(x)]: minimising it maximises the critic's estimate of W1 (Algorithm 1)."""
    return _scores(fake_scores, "fake_scores").mean() - _scores(real_scores, "real_scores").mean()


def generator_wasserstein(fake_scores: Tensor) -> Tensor:
    """-E[f(G(z))]: the generator moves its samples uphill on the critic."""
    return -_scores(fake_scores, "fake_scores").mean()


@torch.no_grad()
def clip_weights_(critic: nn.Module, clip: float = 0.01) -> None:
    """Clamp every critic parameter to [-clip, clip] in place (WGAN's crude Lipschitz constraint)."""
    if not clip > 0:
        raise ValueError(f"clip must be positive, got {clip}")
    for p in critic.parameters():
        p.clamp_(-clip, clip)


# --- Least-squares GAN (Mao et al. 2017) ------------------------------------------------------------

def _coding(coding: Union[str, Tuple[float, float, float]]) -> Tuple[float, float, float]:
    if isinstance(coding, str):
        if coding not in LSGAN_CODINGS:
            raise ValueError(f"unknown LSGAN coding {coding!r}; choose one of {', '.join(LSGAN_CODINGS)} "
                             "or pass (a, b, c)")
        return LSGAN_CODINGS[coding]
    try:
        a, b, c = (float(v) for v in coding)
    except (TypeError, ValueError):
        raise ValueError(f"LSGAN coding must be a name ({', '.join(LSGAN_CODINGS)}) or three numbers (a, b, c) = "
                         f"(target for fakes, target for reals, what G wants D to say about fakes), got {coding!r}"
                         ) from None
    return a, b, c


def discriminator_least_squares(real_scores: Tensor, fake_scores: Tensor,
                                coding: Union[str, Tuple[float, float, float]] = "official") -> Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] (Mao et al. 2017, eq. 2)."""
    a, b, _ = _coding(coding)
    real, fake = _scores(real_scores, "real_scores"), _scores(fake_scores, "fake_scores")
    return 0.5 * ((real - b) ** 2).mean() + 0.5 * ((fake - a) ** 2).mean()


def generator_least_squares(fake_scores: Tensor, coding: Union[str, Tuple[float, float, float]] = "official") -> Tensor:
    """1/2 E[(D(G(z)) - c)^2] (Mao et al. 2017, eq. 2)."""
    _, _, c = _coding(coding)
    return 0.5 * ((_scores(fake_scores, "fake_scores") - c) ** 2).mean()


# --- penalties --------------------------------------------------------------------------------------

def _as_critic(critic: Callable[..., Tensor], labels: Optional[Tensor]) -> Callable[[Tensor], Tensor]:
    return critic if labels is None else (lambda x: critic(x, labels))


def _penalty_batch(x: Tensor, name: str, penalty: str) -> None:
    """A penalty differentiates D w.r.t. its input: it needs a non-empty floating-point batch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{penalty}: {name} must be a tensor batch, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{penalty}: {name} is an empty batch (shape {tuple(x.shape)}); it needs at least one sample")
    if not x.is_floating_point():
        raise TypeError(f"{penalty}: {name} has dtype {x.dtype}; gradients need floating point: convert it with "
                        ".float() (images scaled to [-1, 1])")


def gradient_penalty(critic: Callable[..., Tensor], real: Tensor, fake: Tensor, target: float = 1.0,
                     labels: Optional[Tensor] = None) -> Tensor:
    """E[(||grad f(x_hat)||_2 - target)^2] on x_hat = real + eps (fake - real) (Gulrajani et al. 2017, eq. 3).

    One eps ~ U[0, 1] per sample, so eps = 0 is the real sample and eps = 1 the fake (the paper's
    eps x + (1 - eps) x~ with the roles of eps and 1 - eps swapped: the same distribution of x_hat). The
    norm is per sample over all non-batch dimensions; the graph is kept (``create_graph=True``) so the
    penalty trains the critic. Multiply by lambda (10) yourself. NaN inputs give a NaN penalty (see the
    module docstring). ``real`` and ``fake`` must be non-empty floating-point batches.
    """
    _penalty_batch(real, "real", "gradient_penalty")
    _penalty_batch(fake, "fake", "gradient_penalty")
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} batches must have the same shape")
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (real.detach() + eps * (fake.detach() - real.detach())).requires_grad_(True)
    scores = _scores(_as_critic(critic, labels)(x_hat), "critic output")
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - target) ** 2).mean()


def r1_penalty(critic: Callable[..., Tensor], real: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """E[||grad D(x)||^2] on real data (Mescheder et al. 2018); StyleGAN adds gamma/2 times this to D's loss.

    ``real`` must be a non-empty floating-point batch; NaN inputs give a NaN penalty (see the module docstring).
    """
    _penalty_batch(real, "real", "r1_penalty")
    x = real.detach().requires_grad_(True)
    scores = _scores(_as_critic(critic, labels)(x), "critic output")
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def r1_regularizer(gamma: float = 10.0) -> Callable[..., Tensor]:
    """The Trainer's ``d_penalty`` for StyleGAN: gamma/2 * ``r1_penalty`` (StyleGAN Sec. 4; Mescheder et al. 2018).

    With ``Trainer(d_penalty_every=k)`` the penalty is applied every k-th D step, multiplied by k
    (lazy regularisation, StyleGAN2 Sec. 3.1).
    """
    if not gamma >= 0:
        raise ValueError(f"R1 gamma must be >= 0 (paper: 10; small images often need 0.1-1), got {gamma}")

    def penalty(D: nn.Module, real: Tensor, fake: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return 0.5 * gamma * r1_penalty(D, real, labels)

    return penalty


def drift_penalty(real_scores: Tensor) -> Tensor:
    """E[D(x)^2]: keeps WGAN-GP critic scores near 0; PGGAN adds 0.001 times this (Karras et al. 2018, A.1)."""
    return _scores(real_scores, "real_scores").pow(2).mean()


# --- label tricks -----------------------------------------------------------------------------------

def soft_noisy_labels(n: int, real: bool, flip_prob: float = 0.0, device: Optional[torch.device] = None,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    """Soft targets for ``discriminator_bce``: real in U[0.7, 1.2], fake in U[0, 0.3] (the GAN-hacks tip).

    With ``flip_prob`` > 0 that fraction of labels is swapped to the other side (noisy labels).
    """
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
    u = torch.rand(n, generator=generator)
    real_t, fake_t = 0.7 + 0.5 * u, 0.3 * u
    flip = torch.rand(n, generator=generator) < flip_prob
    labels = torch.where(flip, fake_t, real_t) if real else torch.where(flip, real_t, fake_t)
    # BCE needs targets in [0, 1]: U[0.7, 1.2] is the tip as published; values above 1 are clipped to 1.
    return labels.clamp(0.0, 1.0).to(device or "cpu")
