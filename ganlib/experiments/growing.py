"""Chapter 09's experiments: growing PGGAN on MNIST phase by phase, scored with the course's classifier.

The recipe (schedule, faded reals, WGAN-GP trainer) is ``ganlib.experiments.progressive``; this module runs it the
way the chapter measures it:

* ``GrowRecipe``: the chapter's settings (widths, phase length, batch, EMA, critic steps, evaluation cadence);
* ``fit_phases``: train a progressive trainer to the end of each phase in turn, with sample grids and
  checkpoints at phase ends;
* ``grow``: one seeded run on MNIST with the stage Fréchet distance recorded during training, optionally on a
  training clock (``ganlib.hooks.TimedEvaluate``) for the equal-time comparison with LapGAN;
* ``branch_abrupt``: the fade-in ablation, a run resumed from a phase-end checkpoint that switches abruptly;
* ``stage_fd``, ``full_size_fd``, ``diversity``: the scores; ``window``, ``peak_jump``, ``last_before``: reading
  the curves; ``fresh_samples``: samples of an untrained generator, for the checkerboard spectra.

Everything draws from the global RNG in the same order as the chapter's original cells (samples use
``Trainer.sample``), so a run is reproduced by its seed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ganlib.data import TensorSource
from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer
from ganlib.hooks import Evaluate, TimedEvaluate
from ganlib.metrics.classifier import class_histogram, classifier_fd, features, kl_to_uniform
from ganlib.models.pggan import PGGANDiscriminator, PGGANGenerator
from ganlib.progressive import fade_reals
from ganlib.runtime import seed_everything
from ganlib.train import Trainer

Phase = Tuple[int, str]  # (level, 'stabilize' | 'fade'): level 0 is 4x4


@dataclass(frozen=True)
class GrowRecipe:
    """The chapter's run: networks, schedule, trainer and evaluation settings (the notebook picks them by scale)."""

    z_dim: int
    channels: Tuple[int, ...]  # G's and D's widths at 4, 8, 16, 32 px: one level per entry
    steps: int                 # G steps per phase, each stabilisation and each fade
    final: int = 0             # extra G steps in the last, open phase (the 32x32 samples judged are made there)
    batch: int = 16
    ema: float = 0.99
    n_critic: int = 1
    eval_every: int = 15       # G steps between stage Fréchet distances
    n_eval: int = 300          # samples per Fréchet distance
    img_channels: int = 1
    log_every: int = 5

    @property
    def n_levels(self) -> int:
        return len(self.channels)

    @property
    def resolution(self) -> int:
        """The full size: 4 px at level 0, doubled per level."""
        return 4 * 2 ** (self.n_levels - 1)

    def schedule(self, **kwargs) -> ProgressiveSchedule:
        """The schedule with ``steps`` per stabilisation and (unless overridden) per fade."""
        return ProgressiveSchedule(self.n_levels, self.steps, **kwargs)

    def networks(self, mbstd_group: int = 4) -> Tuple[PGGANGenerator, PGGANDiscriminator]:
        """Fresh G and D (initialised from the global RNG, G first); ``mbstd_group=0`` drops minibatch stddev."""
        G = PGGANGenerator(z_dim=self.z_dim, img_channels=self.img_channels, resolution=self.resolution,
                           channels=self.channels)
        D = PGGANDiscriminator(img_channels=self.img_channels, resolution=self.resolution, channels=self.channels,
                               mbstd_group=mbstd_group)
        return G, D


def stage_fd(trainer: Trainer, reals: Tensor) -> Dict[str, float]:
    """Classifier FD of ``len(reals)`` samples against ``reals`` brought to G's current stage (pooled and
    blended exactly as D sees them): how well G matches the target of the phase it is in."""
    level, alpha = trainer.G.stage
    return {"fd": classifier_fd(trainer.sample(len(reals)).cpu().clamp(-1, 1), fade_reals(reals, level, alpha))}


def full_size_fd(trainer: Trainer, reals: Tensor, keep: int = 32) -> Dict[str, object]:
    """Classifier FD of ``len(reals)`` samples against the full-size ``reals``, scored like every model in the
    course, and the first ``keep`` samples (CPU, clamped to [-1, 1]) to show beside it."""
    x = trainer.sample(len(reals)).cpu().clamp(-1, 1)
    return {"fd": classifier_fd(x, reals), "samples": x[:keep]}


def diversity(trainer: Trainer, reals: Tensor) -> Dict[str, float]:
    """Diversity of ``len(reals)`` samples, read off the classifier: KL of the digit histogram to uniform
    (0 = perfectly even), the mean per-feature std of the samples' features over that of ``reals`` (1 = as
    varied as the data) and the FD to ``reals`` (pass them at the resolution the samples are judged at)."""
    x = trainer.sample(len(reals)).cpu().clamp(-1, 1)
    return {"KL to uniform": kl_to_uniform(class_histogram(x)),
            "feature spread / real": float(features(x).std(0).mean() / features(reals).std(0).mean()),
            "FD": classifier_fd(x, reals)}


def fit_phases(trainer: Trainer, schedule: ProgressiveSchedule, *, final: int = 0, until: Optional[Phase] = None,
               snapshot_kinds: Sequence[str] = (), save: Sequence[Tuple[Phase, Union[str, Path]]] = ()
               ) -> Dict[Tuple[int, str], Tensor]:
    """Train to the end of each phase of ``schedule`` in turn (the last, open one ``final`` steps longer).

    At the end of a phase whose kind is in ``snapshot_kinds``, 8 samples are kept (``trainer.sample``, so they draw
    from the global RNG); for each ``(phase, path)`` in ``save`` with that phase, the trainer is saved there; after
    phase ``until`` training stops. Returns the samples as {(resolution, kind): images on the CPU}, in phase order.
    """
    if until is not None and until not in [(level, kind) for level, kind, _, _ in schedule.phases]:
        raise ValueError(f"until={until!r} is not a phase of this schedule: {schedule.phases}")
    snapshots: Dict[Tuple[int, str], Tensor] = {}
    for i, (level, kind, start, length) in enumerate(schedule.phases):
        trainer.fit(start + length + (final if i == len(schedule.phases) - 1 else 0))
        if kind in snapshot_kinds:
            snapshots[(4 * 2**level, kind)] = trainer.sample(8).cpu()
        for phase, path in save:
            if phase == (level, kind):
                trainer.save(path)
        if until == (level, kind):
            break
    return snapshots


def _trainer(recipe: GrowRecipe, images: Tensor, schedule: ProgressiveSchedule, evaluate: Evaluate, *,
             mbstd_group: int = 4, source_seed: int = 0) -> Trainer:
    G, D = recipe.networks(mbstd_group)
    return make_trainer(G, D, TensorSource(images, batch_size=recipe.batch, seed=source_seed), schedule,
                        ema_decay=recipe.ema, gp_at="current", n_critic=recipe.n_critic, hooks=[evaluate],
                        log_every=recipe.log_every)


def grow(recipe: GrowRecipe, images: Tensor, reals: Tensor, *, seed: int = 0, mbstd_group: int = 4,
         until: Optional[Phase] = None, snapshot_kinds: Sequence[str] = (),
         save: Sequence[Tuple[Phase, Union[str, Path]]] = (), clock_at: Optional[float] = None,
         open_every: Optional[int] = None) -> Tuple[Trainer, Evaluate, Dict[Tuple[int, str], Tensor]]:
    """One PGGAN run from 4x4 on ``images``, seeded with ``seed`` (networks, then batches), through ``fit_phases``.

    ``stage_fd`` against ``reals[:recipe.n_eval]`` is recorded every ``recipe.eval_every`` steps, and every
    ``open_every`` steps in the open phase after the schedule (None: no change). With ``clock_at`` the hook is a
    ``TimedEvaluate``: its ``seconds`` count training time, and after ``clock_at`` seconds its ``result`` holds
    ``full_size_fd`` of that moment. Returns (trainer, evaluation hook, snapshots).
    """
    seed_everything(seed)
    schedule = recipe.schedule()
    held = reals[:recipe.n_eval]
    fn = functools.partial(stage_fd, reals=held)
    every: Union[int, Callable[[int], int]] = recipe.eval_every
    if open_every is not None:
        dense, end = recipe.eval_every, schedule.total_steps
        every = lambda step: dense if step <= end else open_every  # noqa: E731
    evaluate = (Evaluate(fn, every=every) if clock_at is None
                else TimedEvaluate(fn, every, at=clock_at, once=functools.partial(full_size_fd, reals=held)))
    # G and D (in _trainer) are still the first to draw after the seed: the schedule and the hook draw nothing
    trainer = _trainer(recipe, images, schedule, evaluate, mbstd_group=mbstd_group, source_seed=seed)
    snapshots = fit_phases(trainer, schedule, final=recipe.final, until=until, snapshot_kinds=snapshot_kinds,
                           save=save)
    return trainer, evaluate, snapshots


def resume_grown(recipe: GrowRecipe, images: Tensor, reals: Tensor, path: Union[str, Path]) -> Trainer:
    """The trainer ``grow`` builds, resumed from a checkpoint ``grow`` saved (e.g. to sample it at that phase);
    ``reals`` serve its evaluation hook, which it needs because a checkpoint resumes only into the same hooks."""
    evaluate = Evaluate(functools.partial(stage_fd, reals=reals[:recipe.n_eval]), every=recipe.eval_every)
    trainer = _trainer(recipe, images, recipe.schedule(), evaluate)
    trainer.resume(path)
    return trainer


def branch_abrupt(recipe: GrowRecipe, images: Tensor, reals: Tensor, path: Union[str, Path], level: int,
                  until_step: int, seed: int = 1) -> Tuple[Trainer, Evaluate]:
    """The fade-in ablation: resume a ``grow`` checkpoint saved at the end of ``level``'s stabilisation and train
    to ``until_step`` with ``fade_steps=0``, so level + 1 is switched on at once; ``stage_fd`` recorded as in ``grow``.
    The networks are seeded with ``seed`` only to be built: resuming replaces their weights and the RNG state."""
    seed_everything(seed)
    # level's stabilisation starts at 2 * level * steps: 4x4's stabilisation, a fade and a stabilisation per level
    # in between, and level's own fade
    schedule = recipe.schedule(fade_steps=0, start_level=level, start_step=(2 * level) * recipe.steps)
    evaluate = Evaluate(functools.partial(stage_fd, reals=reals[:recipe.n_eval]), every=recipe.eval_every)
    trainer = _trainer(recipe, images, schedule, evaluate)
    trainer.resume(path)
    trainer.fit(until_step)
    return trainer, evaluate


def window(records: Dict[str, List[float]], key: str, lo: int, hi: int
           ) -> Tuple[List[int], List[float]]:
    """(steps, values) of ``records[key]`` at steps in [lo, hi], for plots (an ``Evaluate``'s records or a
    ``Trainer``'s history)."""
    pairs = [(s, v) for s, v in zip(records["step"], records[key]) if lo <= s <= hi]
    return [s for s, _ in pairs], [v for _, v in pairs]


def last_before(records: Dict[str, List[float]], key: str, step: int) -> float:
    """The last value of ``records[key]`` recorded at or before ``step``."""
    values = [v for s, v in zip(records["step"], records[key]) if s <= step]
    if not values:
        raise ValueError(f"no {key!r} recorded at or before step {step}")
    return values[-1]


def peak_jump(history: Dict[str, List[float]], switch: int, width: int, key: str = "g_loss") -> float:
    """Largest rise of ``history[key]`` within ``width`` steps after ``switch`` over its last value at or before
    ``switch``: the shock a new resolution gives the G loss."""
    at = dict(zip(history["step"], history[key]))
    after = [v for s, v in at.items() if switch < s <= switch + width]
    if not after:
        raise ValueError(f"no {key!r} recorded in ({switch}, {switch + width}]")
    return max(after) - last_before(history, key, switch)


def fresh_samples(recipe: GrowRecipe, up: str, seed: int, n: int = 256) -> Tuple[Tensor, PGGANGenerator]:
    """``n`` samples of an untrained full-size generator with up-sampling ``up`` ('nearest' or 'transposed'),
    built after ``torch.manual_seed(seed)``, and the generator (in eval mode)."""
    torch.manual_seed(seed)
    G = PGGANGenerator(z_dim=recipe.z_dim, img_channels=recipe.img_channels, resolution=recipe.resolution,
                       channels=recipe.channels, up=up).eval()
    with torch.no_grad():
        return G(torch.randn(n, recipe.z_dim)), G
