"""Growing a GAN while it trains (Karras et al. 2018, "PGGAN", Sec. 2): the schedule, the faded reals, the recipe.

* ``ProgressiveSchedule``: a ``Hook`` that puts G, D and G_ema at the phase's level and fade-in alpha before
  every step and resets the optimisers when a phase begins; level and alpha live in the models' buffers and
  in the hook's state, so a checkpoint resumes mid-fade with the same alpha. It drives any network with
  ``set_stage`` (``ganlib.progressive.StageMixin``): PGGAN's, and StyleGAN's built with ``progressive=True``.
* ``ProgressiveSource``: wraps a batch source so the reals are pooled and blended like G's output.
* ``make_trainer``: PGGAN's recipe, WGAN-GP (lambda 10) + drift 0.001 E[D(real)^2] (Appendix A.1),
  Adam(lr 1e-3, betas (0, 0.99)) reset at each phase change, EMA of G.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ganlib.losses import critic_wasserstein, drift_penalty, generator_wasserstein, gradient_penalty
from ganlib.models.pggan import PGGANDiscriminator, PGGANGenerator
from ganlib.progressive import fade_reals, pool_to, to_full_size
from ganlib.hooks import Hook
from ganlib.train import Trainer


class ProgressiveSchedule(Hook):
    """Phases 4x4 stabilise, then (fade in, stabilise) for each larger resolution; the last phase is open.

    ``start_level`` / ``start_step`` start the schedule later (e.g. to branch a run from a checkpoint
    taken at the end of a phase and continue it with a different fade length).

    ``alpha(step) = (step - fade_start) / fade_steps`` during a fade (0 on its first step) and 1
    otherwise. ``fade_steps = 0`` switches resolutions abruptly (the ablation). On every phase change
    the trainer's optimisers are reset (the official code resets Adam whenever the integer part of
    ``lod`` changes: when a fade starts and when it ends).
    """

    def __init__(self, n_levels: int, stabilize_steps: int, fade_steps: Optional[int] = None,
                 start_level: int = 0, start_step: int = 0) -> None:
        fade_steps = stabilize_steps if fade_steps is None else fade_steps
        if n_levels < 1 or stabilize_steps < 1 or fade_steps < 0:
            raise ValueError(f"need n_levels >= 1, stabilize_steps >= 1, fade_steps >= 0; got {n_levels}, "
                             f"{stabilize_steps}, {fade_steps}")
        if not 0 <= start_level < n_levels or start_step < 0:
            raise ValueError(f"start_level must be in [0, {n_levels - 1}] and start_step >= 0, "
                             f"got {start_level}, {start_step}")
        self.n_levels, self.stabilize_steps, self.fade_steps = n_levels, stabilize_steps, fade_steps
        # (level, kind, first step, length); start_level/start_step let a branch of a run begin mid-way
        self.phases: List[Tuple[int, str, int, int]] = [(start_level, "stabilize", start_step, stabilize_steps)]
        for level in range(start_level + 1, n_levels):
            start = self.phases[-1][2] + self.phases[-1][3]
            if fade_steps:
                self.phases.append((level, "fade", start, fade_steps))
                start += fade_steps
            self.phases.append((level, "stabilize", start, stabilize_steps))
        self.phase: Optional[int] = None
        self.level, self.alpha = 0, 1.0

    @property
    def total_steps(self) -> int:
        """Steps until the last phase has had its ``stabilize_steps`` (it goes on if you train longer)."""
        return self.phases[-1][2] + self.phases[-1][3]

    def stage_at(self, step: int) -> Tuple[int, int, float]:
        """(phase index, level, alpha) for a step."""
        for index in range(len(self.phases) - 1, -1, -1):
            level, kind, start, length = self.phases[index]
            if step >= start:
                alpha = (step - start) / length if kind == "fade" else 1.0
                # rounded to float32, the models' buffer type, so the reals and the networks blend alike
                return index, level, float(torch.tensor(min(alpha, 1.0), dtype=torch.float32))
        raise ValueError(f"step {step} is before this schedule starts (step {self.phases[0][2]})")

    def phase_boundaries(self) -> List[Tuple[int, str, int]]:
        """[(start step, kind, resolution)], for plots."""
        return [(start, kind, 4 * 2**level) for level, kind, start, _ in self.phases]

    def apply(self, trainer: Trainer, step: int) -> None:
        index, level, alpha = self.stage_at(step)
        if self.phase is not None and index != self.phase:
            trainer.reset_optimizers()
        self.phase, self.level, self.alpha = index, level, alpha
        for net in (trainer.G, trainer.D, trainer.G_ema):
            if net is not None and hasattr(net, "set_stage"):
                net.set_stage(level, alpha)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.apply(trainer, trainer.step)

    def on_step_start(self, trainer: Trainer, step: int) -> None:
        self.apply(trainer, step)

    def state_dict(self) -> Dict[str, Any]:
        return {"phase": -1 if self.phase is None else self.phase, "level": self.level, "alpha": self.alpha}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.phase = None if state["phase"] < 0 else int(state["phase"])
        self.level, self.alpha = int(state["level"]), float(state["alpha"])


class ProgressiveSource:
    """Wraps a batch source so each batch of reals is ``fade_reals``-ed to the schedule's level and alpha."""

    def __init__(self, source: Any, schedule: ProgressiveSchedule) -> None:
        if not hasattr(source, "batch"):
            raise TypeError(f"source must have .batch(i) (e.g. ganlib.data.TensorSource), got {type(source).__name__}")
        self.source, self.schedule = source, schedule

    def batch(self, index: int):
        batch = self.source.batch(index)
        if isinstance(batch, (tuple, list)):
            return fade_reals(batch[0], self.schedule.level, self.schedule.alpha), batch[1]
        return fade_reals(batch, self.schedule.level, self.schedule.alpha)


def make_trainer(G: PGGANGenerator, D: PGGANDiscriminator, source: Any, schedule: ProgressiveSchedule, *,
                 lr: float = 1e-3, gp_weight: float = 10.0, drift: float = 1e-3, ema_decay: Optional[float] = 0.999,
                 gp_at: str = "full", hooks: Sequence[Hook] = (), **kwargs: Any) -> Trainer:
    """A ``Trainer`` set up as in the paper: WGAN-GP (lambda 10, target 1) + drift, Adam(lr, (0, 0.99)),
    G EMA, and the schedule as the first hook. Extra keyword arguments go to ``Trainer``.

    ``gp_at="full"`` takes the gradient w.r.t. the full-size images, as the official code does (so at
    4x4 on 32x32 images the penalty asks for gradient norm 8 w.r.t. the 4x4 pixels);
    ``"current"`` takes it w.r.t. the images pooled to the current resolution.
    """
    if gp_at not in ("full", "current"):
        raise ValueError(f"gp_at must be 'full' (official code) or 'current', got {gp_at!r}")
    if G.n_levels != D.n_levels or G.n_levels != schedule.n_levels:
        raise ValueError(f"G ({G.n_levels} levels), D ({D.n_levels}) and the schedule ({schedule.n_levels}) "
                         "must grow to the same resolution")

    def d_loss(real: Tensor, fake: Tensor) -> Tensor:
        return critic_wasserstein(real, fake) + drift * drift_penalty(real)  # Appendix A.1: eps_drift = 0.001

    def d_penalty(critic: nn.Module, real: Tensor, fake: Tensor, labels: Optional[Tensor]) -> Tensor:
        if gp_at == "full":
            return gp_weight * gradient_penalty(critic, real, fake)
        # D's own resolution, not the critic's: under data parallel training the critic is D wrapped in DDP
        full, side = real.shape[-1], D.current_resolution
        return gp_weight * gradient_penalty(lambda x: critic(to_full_size(x, full)), pool_to(real, full, side),
                                            pool_to(fake, full, side))

    return Trainer(G, D, ProgressiveSource(source, schedule), d_loss=d_loss, g_loss=generator_wasserstein,
                   d_penalty=d_penalty, lr=lr, betas=(0.0, 0.99), ema_decay=ema_decay,
                   hooks=[schedule, *hooks], **kwargs)
