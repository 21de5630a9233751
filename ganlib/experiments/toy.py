"""Train one GAN on a 2-D toy mixture and score it: the engine behind chapters 02-05 and ``benchmarks/toy_modes.py``.

One ``ToyConfig`` names everything that differs between runs (loss, sizes, optimiser, tips); ``train_toy``
builds the MLPs, trains them with ``ganlib.train.Trainer`` and scores 2,500 samples with
``ganlib.metrics.mode_stats`` (the VEEGAN/PacGAN protocol). Losses:

* ``ns``      -- non-saturating GAN (Goodfellow et al. 2014, Sec. 3);
* ``minimax`` -- the minimax generator loss as written in eq. 1;
* ``wgan``    -- WGAN with weight clipping (Arjovsky et al. 2017, Alg. 1: RMSprop, c = 0.01, n_critic 5);
* ``wgan_gp`` -- WGAN with gradient penalty (Gulrajani et al. 2017, Alg. 1);
* ``lsgan``   -- least squares (Mao et al. 2017, eq. 2), ``coding`` 'official' (0-1) or 'paper' (-1, 1, 0).

Two levers of the benchmark's: ``ToyConfig.pac`` (PacGAN's packed D) and ``drs_score`` (discriminator
rejection sampling of the trained generator's samples).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import statistics
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
    pac: int = 1                     # PacGAN: D judges packs of this many samples (Lin et al. 2018)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        for name in ("steps", "batch_size", "z_dim", "hidden", "depth", "n_critic", "pac"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise ValueError(f"learning rates must be positive, got lr_g={self.lr_g}, lr_d={self.lr_d}")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay is a fraction of the run in [0, 1], got {self.lr_decay}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], got {self.label_noise}")
        if self.batch_size % self.pac:
            raise ValueError(f"batch_size {self.batch_size} does not divide into packs of pac={self.pac}")

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


def drs_acceptance(logits: Tensor, max_logit: float, gamma: float = 0.0, eps: float = 1e-6) -> Tensor:
    """DRS's acceptance probability sigmoid(F(x)), F = D~ - D*_M - log(1 - exp(D~ - D*_M - eps)) - gamma
    (Azadi et al. 2019, Alg. 1), for logits D~ no larger than ``max_logit``. With gamma = 0 it is exp(D~ - D*_M)
    up to eps: exact rejection sampling from p_data when D~ = log p_data/p_g, at the price of a 1/M acceptance rate."""
    d = logits.double() - max_logit
    if (d > 0).any():
        raise ValueError("a logit exceeds max_logit; raise the maximum first (DRS keeps the largest logit seen)")
    return torch.sigmoid(d - torch.log1p(-torch.exp(d - eps)) - gamma)


@torch.no_grad()
def drs_sample(G: Callable[[Tensor], Tensor], D: Callable[[Tensor], Tensor], n: int, z_dim: int,
               burn_in: int = 10_000, batch: int = 10_000, gamma: float = 0.0, max_draws: int = 5_000_000,
               seed: int = 1234, device: Optional[torch.device] = None) -> Tuple[Tensor, float]:
    """``n`` samples of G kept by discriminator rejection sampling (Azadi et al. 2019, Alg. 1) and the fraction
    of G's draws kept. D*_M starts as the largest logit of ``burn_in`` draws and grows when a batch beats it."""
    gen, dev = torch.Generator().manual_seed(seed), device or torch.device("cpu")

    def draw(m: int) -> Tuple[Tensor, Tensor]:
        x = G(torch.randn(m, z_dim, generator=gen).to(dev))
        return x.cpu(), D(x).double().cpu()

    max_logit = float(draw(burn_in)[1].max())
    kept, accepted, drawn = [], 0, 0
    while accepted < n:
        if drawn >= max_draws:
            raise RuntimeError(f"DRS kept {accepted} of {drawn} draws, short of {n}: D's logits are too spread "
                               "(train D on against this G, or set gamma > 0 to accept more)")
        x, logits = draw(batch)
        drawn += batch
        max_logit = max(max_logit, float(logits.max()))
        keep = torch.rand(batch, generator=gen, dtype=torch.float64) < drs_acceptance(logits, max_logit, gamma)
        kept.append(x[keep])
        accepted += int(keep.sum())
    return torch.cat(kept)[:n], accepted / drawn


def finetune_discriminator(trainer: ToyTrainer, steps: int = 1000, lr: float = 1e-3, seed: int = 99) -> torch.nn.Module:
    """A copy of D trained ``steps`` more BCE steps against the generator we sample (G_ema when kept), G frozen.

    DRS reads log p_data/p_g off D's logit, which holds for the optimal D of a fixed G (Goodfellow et al. 2014,
    Prop. 1); the trained D last saw G, not its average, and at a decayed learning rate.
    """
    if getattr(trainer.D, "pac", 1) != 1:
        raise ValueError("DRS needs one score per sample; a PacGAN discriminator scores packs")
    G = trainer.G_ema if trainer.G_ema is not None else trainer.G
    D = copy.deepcopy(trainer.D).train().requires_grad_(True)
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen, n = torch.Generator().manual_seed(seed), trainer.batch_size
    for _ in range(steps):
        real = trainer.mixture.sample(n, gen).to(trainer.device)
        with torch.no_grad(), eval_mode(G):
            fake = G(torch.randn(n, G.z_dim, generator=gen).to(trainer.device))
        loss = losses.discriminator_bce(D(real), D(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return D.eval().requires_grad_(False)


def drs_score(trainer: ToyTrainer, n: int = 2500, finetune_steps: int = 0, seed: int = 1234) -> Dict[str, float]:
    """modes / hq / reverse_kl of ``n`` DRS-kept samples of G_ema (G without EMA), plus ``acceptance``.

    D is the trained one as it is, or with ``finetune_steps`` > 0 a copy trained on against G_ema first (on the
    ring and grid, seed 0, 1,000 such steps at lr 1e-3 made the reverse KL worse: 0.0011 -> 0.0105, 0.088 -> 0.107).
    """
    G = trainer.G_ema if trainer.G_ema is not None else trainer.G
    D = finetune_discriminator(trainer, finetune_steps) if finetune_steps else trainer.D
    if getattr(D, "pac", 1) != 1:
        raise ValueError("DRS needs one score per sample; a PacGAN discriminator scores packs")
    with eval_mode(G, D):
        x, rate = drs_sample(G, D, n, G.z_dim, seed=seed, device=trainer.device)
    stats = mode_stats(x, trainer.mixture.centers, trainer.mixture.std)
    return {"modes": stats["modes"], "hq": stats["hq"], "reverse_kl": stats["reverse_kl"], "acceptance": rate}


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
          progress: bool = False, log_every: int = 10) -> ToyTrainer:
    """Seed, build G, D, the data source and the trainer for ``cfg`` (not trained yet); ``log_every`` is the
    trainer's history and NaN-guard cadence (each refresh deep-copies the state: at 10, 8 % of a toy run's CPU time)."""
    mixture = toy(cfg.dataset)
    seed_everything(cfg.seed)
    dev = device or torch.device("cpu")
    G = MLPGenerator(cfg.z_dim, mixture.dim, cfg.hidden, cfg.depth, cfg.g_activation, cfg.g_batchnorm)
    D = MLPDiscriminator(mixture.dim, cfg.hidden, cfg.depth, cfg.d_activation, cfg.d_batchnorm, cfg.pac)
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
                         hooks=all_hooks, log_every=log_every, progress=progress, device=dev, mixture=mixture)
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
              progress: bool = False, n_eval: int = 2500, log_every: int = 10) -> ToyResult:
    """Train one config and score 2,500 samples (of G_ema when ``ema_decay`` is set).

    ``eval_every`` > 0 also records mode statistics along the way (``result.curve``); ``log_every`` as in ``build``.
    """
    tracker = ModeTracker(toy(cfg.dataset), eval_every, n_eval) if eval_every else None
    trainer = build(cfg, tuple(hooks) + ((tracker,) if tracker else ()), device, progress, log_every)
    start = time.perf_counter()
    trainer.fit(cfg.steps)
    seconds = time.perf_counter() - start
    stats = score(trainer, trainer.mixture, n_eval)
    return ToyResult(cfg, trainer, stats, seconds, tracker.rows if tracker else [])


def summarise(results: List[ToyResult]) -> Dict[str, float]:
    """Mean, population std and median over seeds of modes, HQ (%) and reverse KL, plus mean seconds per run."""
    def col(key: str) -> Tensor:
        return torch.tensor([r.stats[key] for r in results], dtype=torch.float64)

    modes, hq, rkl = col("modes"), col("hq") * 100, col("reverse_kl")
    std = (lambda t: float(t.std(unbiased=False)) if len(t) > 1 else 0.0)
    finite = rkl[torch.isfinite(rkl)]
    return {"modes_mean": float(modes.mean()), "modes_std": std(modes), "hq_mean": float(hq.mean()),
            "hq_std": std(hq), "rkl_mean": float(rkl.mean()) if len(finite) == len(rkl) else math.inf,
            "rkl_std": std(rkl) if len(finite) == len(rkl) else math.inf,
            # the middle value, or the mean of the two middle ones; a seed's inf KL counts as the largest
            "modes_median": statistics.median(modes.tolist()), "hq_median": statistics.median(hq.tolist()),
            "rkl_median": statistics.median(rkl.tolist()),
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
