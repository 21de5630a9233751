"""The recipes of the reference models and the run that trains one: ``scripts/reference.py NAME`` calls ``run``.

A run is deterministic from its seed (``batch(i)`` sources, seeded latents, every RNG in the checkpoint)
and resumable: it checkpoints every ``checkpoint_every`` steps into ``build/reference/NAME/`` and a second
call continues from there. At the end it exports the EMA generator (BatchNorm statistics re-estimated for
the averaged weights, fp16) to ``data/reference/NAME.pt`` and measures it, on the fp16 weights it ships,
against the real-vs-real floor; the numbers go into ``data/reference/manifest.json``.
"""
from __future__ import annotations

import fcntl
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ganlib import losses
from ganlib import reference as ref
from ganlib.data import TensorSource, mnist
from ganlib.metrics.classifier import class_histogram, classifier_fd, conditional_accuracy, kl_to_uniform, real_floor
from ganlib.metrics.frechet import frechet_distance
from ganlib.runtime import device as default_device
from ganlib.runtime import seed_everything
from ganlib.checkpoint import atomic_save
from ganlib.hooks import Evaluate, Hook
from ganlib.train import Trainer

N_EVAL = 1000          # images per Fréchet distance: the held-out split has exactly 1,000 digits
EVAL_SEED = 1234       # latents for the evaluations, separate from training's RNG stream
RECALIBRATION_BATCHES = 40  # batches of 256 latents for re-estimating BatchNorm statistics (10,240 samples)


@dataclass(frozen=True)
class Recipe:
    """Everything a reference run depends on; stored in the manifest as it is."""

    name: str
    chapter: str
    family: str                            # which training run: single (one Trainer) | lapgan | pggan
    kind: str                              # how to sample it: unconditional | conditional | lapgan
    generator: str                         # class path in ganlib.models
    generator_kwargs: Dict[str, Any]
    discriminator: str
    discriminator_kwargs: Dict[str, Any]
    data: str                              # what it trains on
    steps: int                             # generator updates
    batch: int
    lr: float
    betas: Tuple[float, float]
    ema_decay: float
    loss: str = "nonsaturating (BCE on logits)"
    seed: int = 0
    eval_every: int = 1000
    checkpoint_every: int = 250
    notes: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


RECIPES: Dict[str, Recipe] = {
    "dcgan": Recipe(
        name="dcgan", chapter="06", family="single", kind="unconditional",
        generator="ganlib.models.dcgan.Generator",
        generator_kwargs=dict(z_dim=100, image_size=28, channels=1, width=64),
        discriminator="ganlib.models.dcgan.Discriminator",
        discriminator_kwargs=dict(image_size=28, channels=1, width=64),
        data="bundled MNIST, train split (4,000 digits), 28x28",
        steps=9000, batch=64, lr=2e-4, betas=(0.5, 0.999), ema_decay=0.999,
        notes="pytorch/examples' DCGAN widths (ngf = ndf = 64) and optimiser; the chapter's small run uses width 32, "
              "batch 16, 2,400 steps, no EMA",
    ),
    "cgan": Recipe(
        name="cgan", chapter="07", family="single", kind="conditional",
        generator="ganlib.models.cgan.ConditionalGenerator",
        generator_kwargs=dict(n_classes=10, z_dim=100, image_size=28, channels=1, width=64, conditioning="onehot"),
        discriminator="ganlib.models.cgan.ConditionalDiscriminator",
        discriminator_kwargs=dict(n_classes=10, image_size=28, channels=1, width=64, conditioning="onehot"),
        data="bundled MNIST, train split (4,000 digits, 400 per class), 28x28, with labels",
        steps=9000, batch=64, lr=2e-4, betas=(0.5, 0.999), ema_decay=0.999,
        notes="one-hot conditioning, the paper's idea and the chapter's main model",
    ),
    "lapgan": Recipe(
        name="lapgan", chapter="08", family="lapgan", kind="lapgan",
        generator="ganlib.models.lapgan.LapGAN",
        generator_kwargs=dict(img_channels=1, resolution=32, levels=3, z_dim=64, base_hidden=64, hidden=[64, 32],
                              kernel=3, base="conv"),
        discriminator="(inside LapGAN)", discriminator_kwargs={},
        data="bundled MNIST, train split (4,000 digits), zero-padded to 32x32",
        steps=16500, batch=64, lr=5e-4, betas=(0.5, 0.999), ema_decay=0.999,
        notes="levels trained one after another on real pyramids (8x8 conv base, 16x16, 32x32); the chapter's full "
              "widths; lr is the base's, the finer levels use extra['level_lr'] as in the chapter",
        extra={"level_steps": [10000, 4000, 2500], "level_lr": [5e-4, 2.5e-3, 2.5e-3]},
    ),
    "pggan": Recipe(
        name="pggan", chapter="09", family="pggan", kind="unconditional",
        generator="ganlib.models.pggan.PGGANGenerator",
        generator_kwargs=dict(z_dim=128, img_channels=1, resolution=32, channels=[128, 64, 32, 16]),
        discriminator="ganlib.models.pggan.PGGANDiscriminator",
        discriminator_kwargs=dict(img_channels=1, resolution=32, channels=[128, 64, 32, 16]),
        data="bundled MNIST, train split (4,000 digits), zero-padded to 32x32",
        steps=5500, batch=32, lr=1e-3, betas=(0.0, 0.99), ema_decay=0.995,
        loss="WGAN-GP (lambda 10, gradient at the current resolution) + drift 0.001",
        notes="4x4 -> 32x32, 500 G steps per fade and per stabilisation, then 2,000 more at 32x32; one D step per G "
              "step (paper); Adam reset at each phase change; EMA 0.995 (half-life ~140 steps), because the paper's "
              "0.999 (half-life ~700) outlives our 500-step phases and mixed resolutions in a first attempt",
        eval_every=500, extra={"stabilize_steps": 500, "final_steps": 2000, "n_critic": 1},
    ),
    "stylegan": Recipe(
        name="stylegan", chapter="10", family="stylegan", kind="style",
        generator="ganlib.models.stylegan.StyleGenerator",
        generator_kwargs=dict(z_dim=64, w_dim=64, mapping_depth=2, mapping_lr_mul=0.01, resolution=32, img_channels=3,
                              fmap_base=1024, fmap_max=64, style_mixing_prob=0.9, modulation="demod"),
        discriminator="ganlib.models.stylegan.StyleDiscriminator",
        discriminator_kwargs=dict(resolution=32, img_channels=3, fmap_base=1024, fmap_max=64),
        data="the chapter's procedural shapes (ganlib.data.shapes: 4 shapes x 6 colours x 4 backgrounds, size and "
             "position uniform), 32x32 RGB, a fresh batch every step",
        steps=8000, batch=32, lr=2e-3, betas=(0.0, 0.99), ema_decay=0.998,
        loss="nonsaturating (BCE on logits) + lazy R1 (gamma 2, every 16 D steps)",
        notes="StyleGAN2-ADA's CIFAR configuration scaled to a CPU (2 mapping layers, lr multiplier 0.01, batch 32, "
              "EMA half-life ~11k images) with StyleGAN2's weight demodulation: the chapter's AdaIN "
              "generator is shown beside it; 64 feature maps up to 16x16, 32 at 32x32. R1 gamma 2, not the "
              "CIFAR config's 0.01: measured at 1,000 steps, gamma 2 reached factor FD 124 against 183 for gamma 0.1, "
              "and gamma 0.1 stalled at FD ~80 from 3,000 to 5,000 steps",
        eval_every=1000, extra={"gamma": 2.0, "r1_every": 16},
    ),
}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; choose one of {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def run_dir(name: str, root: Optional[Path] = None) -> Path:
    return (root or Path(__file__).resolve().parents[2] / "build" / "reference") / name


# -- evaluation -----------------------------------------------------------------------------------

def image_size(r: Recipe) -> int:
    return 28 if r.family == "single" else 32


def eval_labels(n: int = N_EVAL) -> Tensor:
    return torch.arange(n) % 10


def export_copy(source: Any, r: Recipe) -> nn.Module:
    """The generator we ship, on the CPU in eval mode: the EMA weights, with BatchNorm statistics
    re-estimated for those weights (``source`` is a Trainer, or for LapGAN the model with its EMA levels)."""
    if r.family == "stylegan":
        return _export_stylegan(source)
    if r.family == "lapgan":
        model = ref.copy_for_export(source)
        G = model.generators[0]  # the base level is the only one with BatchNorm
    else:
        G = model = ref.copy_for_export(source.G_ema if source.G_ema is not None else source.G)
    gen = torch.Generator().manual_seed(EVAL_SEED + 1)

    def forward(net: nn.Module) -> None:
        z = torch.randn(256, G.z_dim, generator=gen)
        net(z, torch.randint(0, 10, (256,), generator=gen)) if r.kind == "conditional" else net(z)

    with torch.no_grad():
        ref.recalibrate_batchnorm_(G, forward, batches=RECALIBRATION_BATCHES)
    if r.family == "pggan":
        model.set_stage(model.n_levels - 1, 1.0)
    return model.eval()


def _export_stylegan(trainer: Trainer) -> nn.Module:
    """The EMA generator with its own ``w_avg``: the tracked mean it inherits belongs to the training mapping,
    so it is re-estimated from 10,240 seeded latents through the averaged mapping (what truncation pulls towards)."""
    G = ref.copy_for_export(trainer.G_ema)
    gen = torch.Generator().manual_seed(EVAL_SEED + 1)
    with torch.no_grad():
        w = torch.cat([G.mapping(torch.randn(256, G.z_dim, generator=gen)) for _ in range(RECALIBRATION_BATCHES)])
        G.w_avg.copy_(w.mean(0))
    return G.eval()


def measure(G: nn.Module, r: Recipe, n: int = N_EVAL, floor: bool = True) -> Dict[str, Any]:
    """The chapter's scores of ``G`` at ``n`` images against the held-out digits (never trained on) and,
    with ``floor``, the real-vs-real floor at the same ``n``."""
    if r.family == "stylegan":
        return measure_stylegan(G, n, floor=floor)
    real_x, real_y = mnist(image_size(r), "heldout")
    labels = eval_labels(n) if r.kind == "conditional" else None
    fakes = ref.generate(G, r.kind, n, seed=EVAL_SEED, labels=labels)
    out: Dict[str, Any] = {"fd": classifier_fd(fakes, real_x[:n]), "class_kl": kl_to_uniform(class_histogram(fakes)),
                           "n": n}
    if floor:
        out["floor"] = real_floor(n=n)
    if r.kind == "conditional":
        out["accuracy"] = conditional_accuracy(fakes, labels)
        out["accuracy_real_heldout"] = conditional_accuracy(real_x, real_y)
    if r.family == "pggan" and floor:
        out["per_resolution"] = per_resolution_fd(G, n)
    return out


def measure_stylegan(G: nn.Module, n: int = N_EVAL, floor: bool = True) -> Dict[str, Any]:
    """Issue-13 scores of a shapes StyleGAN, read by the shipped factor network at ``n`` images: how sure it is of
    the shape (real renders beside it), how the shapes, colours and backgrounds are spread, the factor-feature
    Fréchet distance to real renders (and real vs real), and what swapping coarse or fine styles does to the shape."""
    from ganlib.data.shapes import shapes
    from ganlib.experiments import stylegan as lab

    device = G.w_avg.device
    net = lab.load_factor_net(device)
    fakes = ref.generate(G, "style", n, seed=EVAL_SEED).to(device)
    real = shapes(n, seed=EVAL_SEED).images.to(device)
    real_features = lab.features(net, real)
    out: Dict[str, Any] = {"n": n, **_factor_spread(net, fakes, "")}
    out["factor_fd"] = frechet_distance(lab.features(net, fakes), real_features)
    if floor:
        out.update(_factor_spread(net, real, "real_"))
        out["factor_floor"] = frechet_distance(lab.features(net, shapes(n, seed=EVAL_SEED + 1).images.to(device)),
                                               real_features)
    out.update(style_swap_scores(G, net, n=n // 2))
    return out


@torch.no_grad()
def _factor_spread(net: nn.Module, images: Tensor, prefix: str) -> Dict[str, Any]:
    from ganlib.experiments import stylegan as lab

    logits = net(images)
    fraction = lambda k: (torch.bincount(logits[k].argmax(1), minlength=lab.CATEGORICAL[k]).float()  # noqa: E731
                          / len(images)).tolist()
    return {f"{prefix}shape_confidence": torch.softmax(logits["shape"], 1).amax(1).mean().item(),
            f"{prefix}shape_fractions": [round(v, 4) for v in fraction("shape")],
            f"{prefix}colour_fractions": [round(v, 4) for v in fraction("colour")],
            f"{prefix}background_fractions": [round(v, 4) for v in fraction("background")]}


def coarse_fine_ranges(G: nn.Module) -> Dict[str, Tuple[int, int]]:
    """StyleGAN Sec. 3.1's split scaled to 32x32: coarse = the 4x4 and 8x8 styles, fine = the 32x32 styles."""
    from ganlib.experiments import stylegan as lab

    by_res = lab.layer_ranges(G)
    return {"coarse": (by_res["4x4"][0], by_res["8x8"][1]), "fine": by_res[f"{G.resolution}x{G.resolution}"]}


def style_swap_scores(G: nn.Module, net: nn.Module, n: int = N_EVAL // 2, seed: int = EVAL_SEED) -> Dict[str, float]:
    """For ``n`` pairs (A, B) whose shapes differ: how often A's shape class changes when A takes B's coarse styles,
    and when it takes only B's fine styles (the issue's mixing targets: >= 50 % and <= 10 %)."""
    from ganlib.experiments import stylegan as lab

    fa, fb, mixed = lab.swapped_factors(G, net, n, seed, coarse_fine_ranges(G))
    differ = fa["shape"] != fb["shape"]
    out = {"pairs_with_different_shapes": int(differ.sum())}
    for name, fm in mixed.items():
        out[f"{name}_swap_changes_shape"] = (fm["shape"][differ] != fa["shape"][differ]).float().mean().item()
    return out


def per_resolution_fd(G: nn.Module, n: int = N_EVAL) -> Dict[str, Dict[str, float]]:
    """FD of G's samples at every level against held-out digits pooled to that resolution, and the floor there
    (two disjoint halves of all digits, pooled the same way)."""
    from ganlib.progressive import fade_reals

    held, _ = mnist(32, "heldout")
    everything, _ = mnist(32, "all")
    perm = torch.randperm(len(everything), generator=torch.Generator().manual_seed(0))
    a, b = everything[perm[:n]], everything[perm[n:2 * n]]
    top = G.stage
    out = {}
    try:
        for level in range(G.n_levels):
            G.set_stage(level, 1.0)
            fakes = ref.generate(G, "unconditional", n, seed=EVAL_SEED)
            pooled = lambda x: fade_reals(x, level, 1.0)  # noqa: E731
            out[f"{4 * 2 ** level}x{4 * 2 ** level}"] = {"fd": round(classifier_fd(fakes, pooled(held[:n])), 4),
                                                         "floor": round(classifier_fd(pooled(a), pooled(b)), 4)}
    finally:
        G.set_stage(*top)
    return out


# -- the runs -------------------------------------------------------------------------------------

class WallClock(Hook):
    """Training seconds summed over every session of a run, wall clock and this process's CPU time (on a shared
    machine the wall clock overstates what one free core needs); saved in the checkpoint, so a resume keeps counting."""

    def __init__(self) -> None:
        self.seconds = self.cpu_seconds = 0.0
        self._last = self._last_cpu = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self._last, self._last_cpu = time.perf_counter(), time.process_time()

    def on_step_end(self, trainer: Trainer, step: int, logs: Optional[Dict[str, float]]) -> None:
        now, now_cpu = time.perf_counter(), time.process_time()
        self.seconds += now - self._last
        self.cpu_seconds += now_cpu - self._last_cpu
        self._last, self._last_cpu = now, now_cpu

    def state_dict(self) -> Dict[str, Any]:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.seconds = float(state["seconds"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))  # checkpoints from before CPU time was kept


@dataclass
class Finished:
    """What a run hands to ``export``: the model to ship and the bookkeeping for the manifest."""

    model: nn.Module
    steps: int
    images_seen: int            # real images D was shown (a conditional G step also draws a batch, for its labels)
    seconds: float
    curve: Dict[str, Any]
    cpu_seconds: Optional[float] = None  # the process's CPU time while training (one thread: one core's worth)


def _resume_or_start(trainer: Trainer, checkpoint: Path, clock: WallClock, what: str, total: int,
                     log: Callable[[str], None]) -> None:
    if checkpoint.is_file():
        trainer.resume(checkpoint)
        log(f"resumed {what} at step {trainer.step} of {total} ({clock.seconds:.0f} s trained so far)")


def _scores_logger(r: Recipe, clock: WallClock, log: Callable[[str], None], score: Callable[[Trainer], Dict[str, float]]):
    def scores(trainer: Trainer) -> Dict[str, float]:
        out = score(trainer)
        log(f"{r.name} step {trainer.step} ({clock.seconds:.0f} s): " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
        return out
    return scores


def _networks(r: Recipe) -> Tuple[nn.Module, nn.Module]:
    """G and D of the recipe, built right after seeding: the same initial weights on every run."""
    seed_everything(r.seed)
    return ref.build_model(r.generator, r.generator_kwargs), ref.build_model(r.discriminator, r.discriminator_kwargs)


def _run_single(r: Recipe, folder: Path, steps: Optional[int], progress: bool, log: Callable[[str], None],
                device: torch.device, n_eval: int = N_EVAL) -> Finished:
    steps = r.steps if steps is None else steps
    G, D = _networks(r)
    x, y = mnist(28, "train")
    source = TensorSource(x, y if r.kind == "conditional" else None, batch_size=r.batch, seed=r.seed, device=device)
    keep = ("fd", "accuracy")
    trainer, clock, evaluate = _fit_nonsaturating(r, G, D, source, folder, steps, lambda tr: {
        k: v for k, v in measure(export_copy(tr, r), r, n=n_eval, floor=False).items() if k in keep},
        progress, log, device)
    return Finished(export_copy(trainer, r), trainer.step, trainer.d_steps * r.batch, clock.seconds,
                    evaluate.records, clock.cpu_seconds)


def _fit_nonsaturating(r: Recipe, G: nn.Module, D: nn.Module, source: Any, folder: Path, steps: int,
                       score: Callable[[Trainer], Dict[str, float]], progress: bool, log: Callable[[str], None],
                       device: torch.device, **trainer_kwargs: Any) -> Tuple[Trainer, WallClock, Evaluate]:
    """Train (or resume) G and D with the non-saturating loss to ``steps``, scored every ``eval_every`` steps:
    the loop DCGAN, CGAN and StyleGAN share (StyleGAN adds its R1 through ``trainer_kwargs``)."""
    clock = WallClock()
    evaluate = Evaluate(_scores_logger(r, clock, log, score), every=r.eval_every)
    checkpoint = folder / "checkpoint.pt"
    trainer = Trainer(G, D, source, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                      lr=r.lr, betas=r.betas, ema_decay=r.ema_decay, hooks=[clock, evaluate],
                      checkpoint_path=checkpoint, checkpoint_every=r.checkpoint_every, progress=progress,
                      device=device, **trainer_kwargs)
    _resume_or_start(trainer, checkpoint, clock, r.name, steps, log)
    trainer.fit(steps)
    return trainer, clock, evaluate


def _run_lapgan(r: Recipe, folder: Path, steps: Optional[int], progress: bool, log: Callable[[str], None],
                device: torch.device, n_eval: int = N_EVAL) -> Finished:
    from ganlib.experiments.lapgan import make_level_trainer

    seed_everything(r.seed)
    model = ref.build_model(r.generator, r.generator_kwargs).to(device)
    x, _ = mnist(32, "train", device=device)
    level_steps = list(r.extra["level_steps"])
    if steps is not None:  # a short try: the same split between levels, scaled down
        level_steps = [max(1, round(steps * s / sum(level_steps))) for s in level_steps]
    emas, seconds, images, curve = [], 0.0, 0, {"level": [], "steps": [], "seconds": []}
    for k, (n_steps, lr) in enumerate(zip(level_steps, r.extra["level_lr"])):
        clock = WallClock()
        checkpoint = folder / f"level{k}.pt"
        trainer = make_level_trainer(model, k, x, batch_size=r.batch, lr=lr, seed=r.seed + k, ema_decay=r.ema_decay,
                                     hooks=[clock], checkpoint_path=checkpoint, checkpoint_every=r.checkpoint_every,
                                     progress=progress, device=device)
        _resume_or_start(trainer, checkpoint, clock, f"{r.name} level {k}", n_steps, log)
        trainer.fit(n_steps)
        log(f"{r.name} level {model.sizes[k]}x{model.sizes[k]}: {trainer.step} steps in {clock.seconds:.0f} s")
        emas.append(trainer.G_ema)
        seconds += clock.seconds
        images += trainer.d_steps * r.batch
        for key, value in (("level", k), ("steps", trainer.step), ("seconds", round(clock.seconds, 1))):
            curve[key].append(value)
    for k, ema in enumerate(emas):  # ship the EMA generators in the model's own slots
        model.generators[k].load_state_dict(ema.state_dict())
    return Finished(export_copy(model, r), sum(level_steps), images, seconds, curve)


def _run_pggan(r: Recipe, folder: Path, steps: Optional[int], progress: bool, log: Callable[[str], None],
               device: torch.device, n_eval: int = N_EVAL) -> Finished:
    from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer
    from ganlib.progressive import fade_reals

    G, D = _networks(r)
    stabilize = r.extra["stabilize_steps"]
    total = r.steps if steps is None else steps
    if steps is not None:  # a short try: every phase, shortened in proportion
        stabilize = max(1, round(stabilize * steps / r.steps))
    schedule = ProgressiveSchedule(G.n_levels, stabilize)
    held, _ = mnist(32, "heldout")
    x, _ = mnist(32, "train")
    clock = WallClock()

    def stage_fd(trainer: Trainer) -> Dict[str, float]:
        level, alpha = trainer.G.stage
        fakes = ref.generate(trainer.G_ema, "unconditional", n_eval, seed=EVAL_SEED)
        return {"fd": classifier_fd(fakes, fade_reals(held[:n_eval], level, alpha)), "level": level,
                "alpha": alpha}

    evaluate = Evaluate(_scores_logger(r, clock, log, stage_fd), every=r.eval_every)
    checkpoint = folder / "checkpoint.pt"
    trainer = make_trainer(G, D, TensorSource(x, batch_size=r.batch, seed=r.seed, device=device), schedule,
                           lr=r.lr, ema_decay=r.ema_decay, gp_at="current", n_critic=r.extra["n_critic"],
                           hooks=[clock, evaluate], checkpoint_path=checkpoint,
                           checkpoint_every=r.checkpoint_every, progress=progress, device=device)
    _resume_or_start(trainer, checkpoint, clock, r.name, total, log)
    trainer.fit(total)
    return Finished(export_copy(trainer, r), trainer.step, trainer.d_steps * r.batch, clock.seconds,
                    evaluate.records)


def _run_stylegan(r: Recipe, folder: Path, steps: Optional[int], progress: bool, log: Callable[[str], None],
                  device: torch.device, n_eval: int = N_EVAL) -> Finished:
    from ganlib.data import SamplerSource, render, sample_factors
    from ganlib.losses import r1_regularizer

    steps = r.steps if steps is None else steps
    G, D = _networks(r)
    source = SamplerSource(lambda k, generator: render(sample_factors(k, generator), 32), batch_size=r.batch,
                           seed=r.seed, device=device)
    keep = ("shape_confidence", "factor_fd", "coarse_swap_changes_shape", "fine_swap_changes_shape")
    trainer, clock, evaluate = _fit_nonsaturating(r, G, D, source, folder, steps, lambda tr: {
        k: v for k, v in measure_stylegan(_export_stylegan(tr), n=n_eval, floor=False).items() if k in keep},
        progress, log, device, d_penalty=r1_regularizer(r.extra["gamma"]), d_penalty_every=r.extra["r1_every"])
    return Finished(_export_stylegan(trainer), trainer.step, trainer.d_steps * r.batch, clock.seconds,
                    evaluate.records, clock.cpu_seconds)


RUNS = {"single": _run_single, "lapgan": _run_lapgan, "pggan": _run_pggan, "stylegan": _run_stylegan}


def run(name: str, root: Optional[Path] = None, out_dir: Optional[Path] = None, steps: Optional[int] = None,
        progress: bool = True, log: Callable[[str], None] = print,
        device: Optional[torch.device] = None, n_eval: int = N_EVAL) -> Dict[str, Any]:
    """Train (or resume) the reference model ``name``, then export it and update the manifest.

    ``steps`` shortens the run (every phase or level in proportion): for trying the script, never for shipping.
    """
    r = recipe(name)
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    folder = run_dir(name, root)
    folder.mkdir(parents=True, exist_ok=True)
    done = RUNS[r.family](r, folder, steps, progress, log, device or default_device(), n_eval)
    return export(r, done, out_dir=out_dir, log=log, n_eval=n_eval)


def export(r: Recipe, done: Finished, out_dir: Optional[Path] = None, log: Callable[[str], None] = print,
           n_eval: int = N_EVAL) -> Dict[str, Any]:
    """Write ``data/reference/NAME.pt`` (fp16) and its manifest entry, with metrics measured on those fp16 weights."""
    out_dir = out_dir or ref.reference_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    state = ref.half_round_trip(done.model)
    path = out_dir / f"{r.name}.pt"
    atomic_save(state, path)
    metrics = measure(done.model, r, n=n_eval)
    info = {
        "file": path.name, "chapter": r.chapter, "kind": r.kind,
        "model": ref.class_path(done.model), "kwargs": r.generator_kwargs, "dtype": "float16",
        "data": r.data, "recipe": {k: v for k, v in asdict(r).items() if k not in ("name", "chapter", "kind")},
        "steps": done.steps, "finished": done.steps >= r.steps, "images_seen": done.images_seen,
        "wall_seconds": round(done.seconds, 1), "torch": torch.__version__,
        **({} if done.cpu_seconds is None else {"cpu_seconds": round(done.cpu_seconds, 1)}),
        "threads": torch.get_num_threads(), "sha256": ref.sha256_of(path), "bytes": path.stat().st_size,
        "metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
        "curve": done.curve,
    }
    with open(out_dir / ".manifest.lock", "w") as lock:  # two runs may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        _update_manifest(out_dir / ref.MANIFEST, r.name, info)
    log(f"exported {r.name}: {path} ({info['bytes'] / 1e6:.2f} MB), metrics {info['metrics']}")
    return info


def _update_manifest(manifest_path: Path, name: str, info: Dict[str, Any]) -> None:
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("about", "Reference generators trained by scripts/reference.py; see ganlib/reference.py. "
                                 "Metrics: classifier FD at n images vs the held-out digits, floor = real vs real.")
    manifest.setdefault("models", {})[name] = info
    tmp = manifest_path.with_name(f".{manifest_path.name}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tmp.replace(manifest_path)
