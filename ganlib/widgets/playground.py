"""The 2-D GAN playground (chapter 05b): pick a dataset, a loss, learning rates, n_critic and tips, press
train, and watch the samples, the discriminator's surface and the mode counter update.

The logic lives in ``Playground`` and is plain Python: ``config()`` reads the controls into a
``ToyConfig``, ``train()`` runs it and redraws every ``redraw_every`` steps. The widgets only set values
and call ``train``; headless (CI, nbval) nothing waits for a click -- ``show_static()`` trains the
current configuration once and draws the final figure.

Every control holds its values exactly: the learning rates are picked from ``LEARNING_RATES``, a grid
that contains every preset, so the browser never snaps a preset to a neighbour and sends that back.
"""
from __future__ import annotations

import math
import time
from typing import Dict, Optional

import torch

from ganlib.data import toy
from ganlib.experiments.toy import (LOSS_NAMES, LOSSES, ModeTracker, ToyConfig, ToyResult, build, fixed_samples,
                                    playground_preset, published_defaults, score)
from ganlib.hooks import Hook

DATASETS = ("ring", "grid", "ring_wgangp", "grid_wgangp")

# The learning-rate grid, 1-2-5 per decade. A log slider snapped WGAN's 5e-5 to its quarter-decade grid
# (5.62e-5) in the browser and sent that back after the kernel had moved on to the next preset; choices
# from this list are exact, and every preset below is one of them (tests check it).
LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)
MAX_STEPS = 100_000

# Picking a loss loads these into the controls: ganlib.experiments.toy's table of published settings.
LOSS_PRESETS: Dict[str, Dict[str, float]] = {loss: playground_preset(loss) for loss in LOSSES}


def _lr_label(lr: float) -> str:
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"  # 5e-05 -> 5e-5


def _draw(ax_pts, ax_curve, trainer, curve, title: str) -> None:
    from ganlib.viz import plot_2d

    mixture = trainer.mixture
    real = mixture.sample(1000, torch.Generator().manual_seed(0))
    fake = fixed_samples(trainer, 1000)
    lim = float(mixture.centers.abs().max()) * 1.3 + 4 * mixture.std
    plot_2d(real, fake, trainer.D, None, ax=ax_pts, lim=lim, title=title)
    if curve:
        steps = [r["step"] for r in curve]
        ax_curve.plot(steps, [r["modes"] for r in curve], "o-", label="modes")
        ax_curve.set_ylim(0, mixture.num_modes + 0.5)
        ax_curve.set_xlabel("generator step")
        ax_curve.set_ylabel(f"modes (of {mixture.num_modes})")
        twin = ax_curve.twinx()
        twin.plot(steps, [100 * r["hq"] for r in curve], "s--", color="tab:orange", label="HQ %")
        twin.set_ylim(0, 100)
        twin.set_ylabel("HQ %", color="tab:orange")


class _Redraw(Hook):
    def __init__(self, playground: "Playground", every: int) -> None:
        self.pg, self.every = playground, every

    def on_step_end(self, trainer, step: int, logs) -> None:
        if step % self.every == 0:
            self.pg._update(trainer, final=False)


class Playground:
    """Controls + a figure. ``Playground().widget`` is what a notebook displays."""

    def __init__(self, steps: int = 2000, redraw_every: int = 250, live: Optional[bool] = None) -> None:
        import ipywidgets as W

        from ganlib.viz import live_updates_wanted

        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {steps}")
        self.live = live_updates_wanted() if live is None else live
        self.redraw_every = redraw_every
        style = {"description_width": "110px"}
        self.dataset = W.Dropdown(options=DATASETS, value="ring", description="dataset", style=style)
        self.loss = W.Dropdown(options=[(LOSS_NAMES[k], k) for k in LOSSES], value="ns", description="loss",
                               style=style)
        rates = [(_lr_label(lr), lr) for lr in LEARNING_RATES]
        self.lr_g = W.SelectionSlider(options=rates, value=1e-3, description="lr G", style=style)
        self.lr_d = W.SelectionSlider(options=rates, value=1e-3, description="lr D", style=style)
        self.n_critic = W.IntSlider(value=1, min=1, max=10, description="n_critic", style=style)
        # a number box, not a slider: any count holds exactly (a slider from 100 clamped smoke's 20 steps to 100)
        self.steps = W.BoundedIntText(value=steps, min=1, max=MAX_STEPS, description="steps", style=style)
        self.leaky = W.Checkbox(value=True, description="LeakyReLU in D")
        self.ema = W.Checkbox(value=False, description="EMA of G (0.99)")
        self.decay = W.Checkbox(value=True, description="decay lr (2nd half)")
        self.soft = W.Checkbox(value=False, description="soft/noisy labels")
        self.seed = W.IntText(value=0, description="seed", style=style)
        self.button = W.Button(description="train", button_style="primary", icon="play")
        self.status = W.HTML("press <b>train</b>")
        self.out = W.Output()
        self.loss.observe(self._on_loss, names="value")
        self.button.on_click(lambda _: self.train())
        self.result: Optional[ToyResult] = None
        self._fig = None
        left = W.VBox([self.dataset, self.loss, self.lr_g, self.lr_d, self.n_critic, self.steps, self.seed])
        right = W.VBox([self.leaky, self.ema, self.decay, self.soft, self.button, self.status])
        self.widget = W.VBox([W.HBox([left, right]), self.out])

    # -- logic (testable without a front end) ------------------------------------------------------

    def _on_loss(self, change) -> None:
        preset = LOSS_PRESETS[change["new"]]
        self.lr_g.value, self.lr_d.value, self.n_critic.value = preset["lr_g"], preset["lr_d"], preset["n_critic"]
        self.soft.disabled = change["new"] not in ("ns", "minimax")  # soft labels only make sense for BCE

    def config(self) -> ToyConfig:
        """The controls as a ``ToyConfig``; what they do not set (optimiser, betas, clip, lambda) is the loss's
        published setting, ``ganlib.experiments.toy.PUBLISHED``."""
        loss = self.loss.value
        return published_defaults(
            loss, dataset=self.dataset.value, steps=int(self.steps.value), lr_g=float(self.lr_g.value),
            lr_d=float(self.lr_d.value), n_critic=int(self.n_critic.value),
            d_activation="leaky_relu" if self.leaky.value else "relu",
            ema_decay=0.99 if self.ema.value else None, lr_decay=0.5 if self.decay.value else 0.0,
            soft_labels=bool(self.soft.value) and loss in ("ns", "minimax"), seed=int(self.seed.value))

    def train(self, steps: Optional[int] = None) -> ToyResult:
        """Train the current configuration (``steps`` overrides the slider) and update the figure and counter."""
        cfg = self.config()
        if steps is not None:
            cfg = cfg.replace(steps=steps)
        self.button.disabled = True
        self.status.value = f"training {LOSS_NAMES[cfg.loss]} on {cfg.dataset} for {cfg.steps} steps ..."
        tracker = ModeTracker(toy(cfg.dataset), every=max(1, min(self.redraw_every, cfg.steps)))
        hooks = (tracker, _Redraw(self, self.redraw_every)) if self.live else (tracker,)
        trainer = build(cfg, hooks)
        self._tracker, self._running = tracker, cfg
        start = time.perf_counter()
        try:
            trainer.fit(cfg.steps)
        finally:
            self.button.disabled = False
        stats = score(trainer, trainer.mixture)
        self.result = ToyResult(cfg, trainer, stats, time.perf_counter() - start, tracker.rows)
        self.status.value = self.counter_text(stats, trainer.mixture.num_modes)
        self._update(trainer, final=True)
        return self.result

    @staticmethod
    def counter_text(stats: Dict[str, float], num_modes: int) -> str:
        kl = "inf" if not math.isfinite(stats["reverse_kl"]) else f"{stats['reverse_kl']:.3f}"
        return (f"<b>{stats['modes']} / {num_modes} modes</b>, {100 * stats['hq']:.1f} % high quality, "
                f"reverse KL {kl}")

    # -- drawing -----------------------------------------------------------------------------------

    def show(self) -> None:
        """Display the widget when live; with live drawing off (CI, the rendered site) nothing: no one can
        press train there, and ``show_static()`` draws the figure instead."""
        if self.live:
            from IPython.display import display
            display(self.widget)

    def _update(self, trainer, final: bool) -> None:
        import matplotlib.pyplot as plt

        from ganlib.viz import show_in

        # a fresh figure per redraw: simpler and sturdier than clearing axes that carry colorbars
        self._fig, self._axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
        plt.close(self._fig)  # shown through the Output widget or returned, never twice
        rows = self._tracker.rows if getattr(self, "_tracker", None) else []
        stats = score(trainer, trainer.mixture)
        cfg = self._running
        title = (f"{LOSS_NAMES[cfg.loss]} on {cfg.dataset}, lr G {_lr_label(cfg.lr_g)} / D {_lr_label(cfg.lr_d)}\n"
                 f"step {trainer.step}: {stats['modes']}/{trainer.mixture.num_modes} modes, "
                 f"{100 * stats['hq']:.0f} % HQ")
        _draw(self._axes[0], self._axes[1], trainer, rows, title)
        if self.live:
            show_in(self.out, self._fig)

    def show_static(self, steps: Optional[int] = None):
        """Headless fallback: train the current configuration once and return the final figure."""
        self.train(steps)
        return self._fig
