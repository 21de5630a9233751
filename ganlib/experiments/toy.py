"""Train one GAN on a 2-D toy mixture and score it: the engine behind chapters 02-05 and ``benchmarks/toy_modes.py``.

One ``ToyConfig`` names everything that differs between runs (loss, sizes, optimiser, tips); ``train_toy``
builds the MLPs, trains them with ``ganlib.train.Trainer`` and scores 2,500 samples with
``ganlib.metrics.mode_stats`` (the VEEGAN/PacGAN protocol). Losses:

* ``ns``      -- non-saturating GAN (Goodfellow et al. 2014, Sec. 3);
* ``minimax`` -- the minimax generator loss as written in eq. 1;
* ``wgan``    -- WGAN with weight clipping (Arjovsky et al. 2017, Alg. 1: RMSprop, c = 0.01, n_critic 5);
* ``wgan_gp`` -- WGAN with gradient penalty (Gulrajani et al. 2017, Alg. 1);
* ``lsgan``   -- least squares (Mao et al. 2017, eq. 2), ``coding`` 'official' (0-1) or 'paper' (-1, 1, 0).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ganlib import losses
from ganlib.data import SamplerSource, toy
from ganlib.metrics import mode_stats
from ganlib.models.toy import MLPDiscriminator, MLPGenerator
from ganlib.runtime import eval_mode, seed_everything
from ganlib.hooks import Evaluate, Hook, WeightClip, wgan_critic_schedule
from ganlib.train import Trainer

LOSSES = ("ns", "minimax", "wgan", "wgan_gp", "lsgan")
LOSS_NAMES = {"ns": "NS-GAN", "minimax": "minimax GAN", "wgan": "WGAN (clip)", "wgan_gp": "WGAN-GP",
              "lsgan": "LSGAN"}


@dataclass
class ToyConfig:
    """Everything one 2-D run depends on. Defaults: a 3x128 ReLU MLP pair, Adam, batch 256."""

    dataset: str = "ring"
    loss: str = "ns"
    steps: int = 2000
    batch_size: int = 256
    z_dim: int = 2
    hidden: int = 128
    depth: int = 3
    g_activation: str = "relu"
    d_activation: str = "relu"
    d_batchnorm: bool = False
    g_batchnorm: bool = False
    optimizer: str = "adam"          # 'adam' or 'rmsprop'
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: Tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1
    warmup_critic: bool = False      # WGAN's official 100 critic steps for the first 25 G steps (and every 500th)
    gp_lambda: float = 0.1           # gan_toy.py uses 0.1 on the 2-D sets (10 on images)
    clip: float = 0.01
    coding: str = "official"         # LSGAN target coding
    soft_labels: bool = False        # real ~ U[0.7, 1.2] (clipped to 1), fake ~ U[0, 0.3]
    label_noise: float = 0.0         # fraction of D's labels flipped
    joint_d_batch: bool = False
    ema_decay: Optional[float] = None
    lr_decay: float = 0.0            # fraction of steps at the end over which both lrs fall linearly to 1 % of their value
    d_init_std: Optional[float] = None  # re-draw D's weights from N(0, std^2), biases 0 (None: PyTorch's default)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        for name in ("steps", "batch_size", "z_dim", "hidden", "depth", "n_critic"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise ValueError(f"learning rates must be positive, got lr_g={self.lr_g}, lr_d={self.lr_d}")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay is a fraction of the run in [0, 1], got {self.lr_decay}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], got {self.label_noise}")

    def replace(self, **changes: Any) -> "ToyConfig":
        """A copy with some fields changed (``cfg.replace(loss='lsgan', seed=3)``)."""
        return dataclasses.replace(self, **changes)


# The one table of each loss's published optimiser settings, applied to our 3x128 MLPs.
PUBLISHED: Dict[str, Dict[str, Any]] = {
    # Goodfellow et al. 2014 trained with SGD + momentum; the three BCE and least-squares GANs get DCGAN's Adam
    # (Radford et al. 2016, Sec. 4: lr 2e-4, beta1 0.5), the usual choice for them since
    "ns": dict(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
    "minimax": dict(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
    "lsgan": dict(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
    # Arjovsky et al. 2017, Alg. 1: RMSprop, alpha 5e-5, c 0.01, n_critic 5
    "wgan": dict(optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, n_critic=5, clip=0.01),
    # Gulrajani et al. 2017, Alg. 1 (alpha 1e-4, beta2 0.9, n_critic 5) with the authors' 2-D settings, beta1 0.5
    # and lambda 0.1 (gan_toy.py in github.com/igul222/improved_wgan_training; lambda 10 is for images)
    "wgan_gp": dict(lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), n_critic=5, gp_lambda=0.1),
}
# The playground starts these at ToyConfig's Adam 1e-3 instead, the course's toy setting since chapter 01 (5x
# DCGAN's rate, which was set for images); WGAN's settings stay the paper's: clipping and RMSprop are the method.
TOY_LR_LOSSES = ("ns", "minimax", "lsgan")


def published_defaults(loss: str, dataset: str = "ring", **changes: Any) -> ToyConfig:
    """A config with the loss's published optimiser settings (``PUBLISHED``); ``changes`` override any field."""
    if loss not in PUBLISHED:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return ToyConfig(dataset=dataset, loss=loss, **{**PUBLISHED[loss], **changes})


def playground_preset(loss: str) -> Dict[str, float]:
    """The playground's starting ``lr_g``, ``lr_d`` and ``n_critic`` for a loss, read from ``PUBLISHED``
    (the BCE and least-squares losses at ToyConfig's learning rate, see ``TOY_LR_LOSSES``)."""
    cfg = ToyConfig(loss=loss) if loss in TOY_LR_LOSSES else published_defaults(loss)
    return {"lr_g": cfg.lr_g, "lr_d": cfg.lr_d, "n_critic": cfg.n_critic}


def loss_functions(cfg: ToyConfig) -> Tuple[Callable, Callable, Optional[Callable]]:
    """(d_loss, g_loss, d_penalty) for the config's loss and label tricks."""
    if cfg.loss in ("ns", "minimax"):
        g_loss = losses.generator_nonsaturating if cfg.loss == "ns" else losses.generator_minimax
        if cfg.soft_labels or cfg.label_noise:
            def d_loss(real: Tensor, fake: Tensor) -> Tensor:
                n, dev = real.shape[0], real.device
                if cfg.soft_labels:
                    rt = losses.soft_noisy_labels(n, True, cfg.label_noise, dev)
                    ft = losses.soft_noisy_labels(fake.shape[0], False, cfg.label_noise, dev)
                else:  # hard labels, a fraction flipped
                    rt = (torch.rand(n, device=dev) >= cfg.label_noise).float()
                    ft = (torch.rand(fake.shape[0], device=dev) < cfg.label_noise).float()
                return losses.discriminator_bce(real, fake, rt, ft)
        else:
            d_loss = losses.discriminator_bce
        return d_loss, g_loss, None
    if cfg.loss in ("wgan", "wgan_gp"):
        penalty = None
        if cfg.loss == "wgan_gp":
            lam = cfg.gp_lambda

            def penalty(D, real, fake, labels=None):
                return lam * losses.gradient_penalty(D, real, fake, labels=labels)
        return losses.critic_wasserstein, losses.generator_wasserstein, penalty
    coding = cfg.coding
    return (lambda r, f: losses.discriminator_least_squares(r, f, coding),
            lambda f: losses.generator_least_squares(f, coding), None)


class LinearLrDecay(Hook):
    """Over the last ``fraction`` of ``total`` steps, scale every learning rate linearly down to ``floor`` of its value."""

    def __init__(self, total: int, fraction: float, floor: float = 0.01) -> None:
        self.total, self.fraction, self.floor = total, fraction, floor
        self.base: Optional[List[List[float]]] = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.base is None:
            self.base = [[g["lr"] for g in opt.param_groups] for opt in (trainer.g_opt, trainer.d_opt)]

    def on_step_start(self, trainer: Trainer, step: int) -> None:
        start = self.total * (1 - self.fraction)
        t = min(max((step - start) / max(self.total - start, 1), 0.0), 1.0)
        factor = 1.0 - (1.0 - self.floor) * t
        for opt, base in zip((trainer.g_opt, trainer.d_opt), self.base):
            for group, lr in zip(opt.param_groups, base):
                group["lr"] = lr * factor

    # Nothing to checkpoint: the base rates are the trainer's own settings, which a resume keeps (a resumed
    # trainer with a lower lr decays from that lr). Older checkpoints' "base" is ignored for the same reason.
    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None: ...


class ModeTracker(Evaluate):
    """``score`` (modes, HQ, reverse KL) of ``n`` fixed-latent samples every ``every`` steps; ``rows`` for plots."""

    def __init__(self, mixture, every: int = 250, n: int = 2500, seed: int = 1234) -> None:
        super().__init__(lambda trainer: score(trainer, mixture, n, seed), every, at_end=False)
        self.mixture, self.n, self.seed = mixture, n, seed


@torch.no_grad()
def fixed_samples(trainer: ToyTrainer, n: int = 2500, seed: int = 1234, use_ema: bool = True) -> Tensor:
    """``n`` samples from a fixed latent draw, so scores at different steps compare like with like."""
    z = torch.randn(n, trainer.G.z_dim, generator=torch.Generator().manual_seed(seed)).to(trainer.device)
    net = trainer.G_ema if (use_ema and trainer.G_ema is not None) else trainer.G
    with eval_mode(net):
        return net(z).cpu()


def score(trainer: ToyTrainer, mixture, n: int = 2500, seed: int = 1234, use_ema: bool = True) -> Dict[str, float]:
    """modes / hq / reverse_kl of ``n`` fixed-latent samples."""
    stats = mode_stats(fixed_samples(trainer, n, seed, use_ema), mixture.centers, mixture.std)
    return {"modes": stats["modes"], "hq": stats["hq"], "reverse_kl": stats["reverse_kl"]}


class ToyTrainer(Trainer):
    """A ``Trainer`` that knows its 2-D mixture (``mixture``), for the hooks and plots that score or draw it."""

    def __init__(self, *args: Any, mixture: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mixture = mixture


def optimizers(cfg: ToyConfig) -> Callable[[torch.nn.Module, str], torch.optim.Optimizer]:
    """The config's optimiser factory for ``Trainer(optimizer=...)``: Adam or RMSprop, ``lr_g`` for G, ``lr_d`` for D."""
    def make(net: torch.nn.Module, role: str) -> torch.optim.Optimizer:
        lr = cfg.lr_g if role == "G" else cfg.lr_d
        if cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        return torch.optim.Adam(net.parameters(), lr=lr, betas=cfg.betas)
    return make


def build(cfg: ToyConfig, hooks: Tuple[Hook, ...] = (), device: Optional[torch.device] = None,
          progress: bool = False) -> ToyTrainer:
    """Seed, build G, D, the data source and the trainer for ``cfg`` (not trained yet)."""
    mixture = toy(cfg.dataset)
    seed_everything(cfg.seed)
    dev = device or torch.device("cpu")
    G = MLPGenerator(cfg.z_dim, mixture.dim, cfg.hidden, cfg.depth, cfg.g_activation, cfg.g_batchnorm)
    D = MLPDiscriminator(mixture.dim, cfg.hidden, cfg.depth, cfg.d_activation, cfg.d_batchnorm)
    if cfg.d_init_std is not None:
        with torch.no_grad():
            for name, p in D.named_parameters():
                p.normal_(0.0, cfg.d_init_std) if name.endswith("weight") else p.zero_()
    d_loss, g_loss, penalty = loss_functions(cfg)
    all_hooks = list(hooks)
    if cfg.loss == "wgan":
        all_hooks.insert(0, WeightClip(cfg.clip))
    if cfg.lr_decay > 0:
        all_hooks.insert(0, LinearLrDecay(cfg.steps, cfg.lr_decay))
    n_critic: Any = cfg.n_critic
    if cfg.warmup_critic:
        n_critic = lambda step: wgan_critic_schedule(step, cfg.n_critic)  # noqa: E731
    data = SamplerSource(mixture.sample, cfg.batch_size, seed=cfg.seed, device=dev)
    trainer = ToyTrainer(G, D, data, d_loss=d_loss, g_loss=g_loss, optimizer=optimizers(cfg), n_critic=n_critic,
                         d_penalty=penalty, ema_decay=cfg.ema_decay, joint_d_batch=cfg.joint_d_batch,
                         hooks=all_hooks, log_every=10, progress=progress, device=dev, mixture=mixture)
    if cfg.loss == "wgan":  # start inside the constraint set, as the official code clamps before the first step
        losses.clip_weights_(trainer.D, cfg.clip)
    return trainer


@dataclass
class ToyResult:
    config: ToyConfig
    trainer: ToyTrainer
    stats: Dict[str, float]
    seconds: float
    curve: List[Dict[str, float]] = field(default_factory=list)


def train_toy(cfg: ToyConfig, eval_every: int = 0, hooks: Tuple[Hook, ...] = (), device: Optional[torch.device] = None,
              progress: bool = False, n_eval: int = 2500) -> ToyResult:
    """Train one config and score 2,500 samples (of G_ema when ``ema_decay`` is set).

    ``eval_every`` > 0 also records mode statistics along the way (``result.curve``).
    """
    tracker = ModeTracker(toy(cfg.dataset), eval_every, n_eval) if eval_every else None
    trainer = build(cfg, tuple(hooks) + ((tracker,) if tracker else ()), device, progress)
    start = time.perf_counter()
    trainer.fit(cfg.steps)
    seconds = time.perf_counter() - start
    stats = score(trainer, trainer.mixture, n_eval)
    return ToyResult(cfg, trainer, stats, seconds, tracker.rows if tracker else [])


def summarise(results: List[ToyResult]) -> Dict[str, float]:
    """Mean and std over seeds of modes, HQ (%) and reverse KL, plus mean seconds per run."""
    def col(key: str) -> Tensor:
        return torch.tensor([r.stats[key] for r in results], dtype=torch.float64)

    modes, hq, rkl = col("modes"), col("hq") * 100, col("reverse_kl")
    std = (lambda t: float(t.std(unbiased=False)) if len(t) > 1 else 0.0)
    finite = rkl[torch.isfinite(rkl)]
    return {"modes_mean": float(modes.mean()), "modes_std": std(modes), "hq_mean": float(hq.mean()),
            "hq_std": std(hq), "rkl_mean": float(rkl.mean()) if len(finite) == len(rkl) else math.inf,
            "rkl_std": std(rkl) if len(finite) == len(rkl) else math.inf,
            "seeds": len(results), "steps": results[0].config.steps,
            "seconds_per_run": float(sum(r.seconds for r in results) / len(results))}


class W1Probe(Evaluate):
    """Every ``every`` steps (and after the first), on fresh batches of ``n``: the critic's estimate
    E f(real) - E f(fake), the exact minibatch W1(real, fake) by optimal assignment, and W1 between two real
    batches (what a perfect G would still score). The Stanczuk et al. (2021) comparison; results in ``rows``."""

    def __init__(self, mixture, every: int = 50, n: int = 256, seed: int = 7) -> None:
        super().__init__(self._probe, every, at_end=False)
        self.mixture, self.n = mixture, n
        self.gen = torch.Generator().manual_seed(seed)

    def due(self, step: int) -> bool:
        return step == 1 or super().due(step)  # the curve starts at the barely trained critic

    @torch.no_grad()
    def _probe(self, trainer: ToyTrainer) -> Dict[str, float]:
        from ganlib.metrics import exact_w1
        real, real2 = self.mixture.sample(self.n, self.gen), self.mixture.sample(self.n, self.gen)
        fake = trainer.G(torch.randn(self.n, trainer.G.z_dim, generator=self.gen).to(trainer.device)).cpu()
        D = trainer.D
        estimate = float(D(real.to(trainer.device)).mean() - D(fake.to(trainer.device)).mean())
        return {"critic": estimate, "w1": exact_w1(real, fake), "w1_real_real": exact_w1(real, real2)}
