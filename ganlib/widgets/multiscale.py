"""Explorers for chapters 08-09: LapGAN's levels and PGGAN's fade-in.

* ``LapGANLevels``: a seed (and class) picker showing, for a few samples, the base image, each level's
  up-sampled coarse image, the generated residual and their sum.
* ``FadeSlider``: an alpha slider showing a PGGAN generator's output at any point of a fade-in between
  two resolutions (alpha = 0: the old resolution up-sampled; 1: the new block alone).

Both keep their last result (``.out`` / ``.images``) so the logic can be tested by setting a control's
value in the kernel, and both have a static twin (``draw_lapgan_levels``, ``draw_fade_strip``) for
headless runs and rendered pages, where widgets do not display (``ganlib.widgets.LiveView``: ``show()``
or ``display(...)`` gives the live widget, its view drawn at once, only when live drawing is on).
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ganlib.widgets import LiveView


def _plt():
    import matplotlib.pyplot as plt
    return plt


def _show(ax, img: Tensor, residual: bool = False, title: Optional[str] = None) -> None:
    img = img.detach().float().cpu()
    if residual:  # signed: diverging map, symmetric range so zero is white
        lim = float(img.abs().max()) or 1.0
        shown = img.mean(0) if img.shape[0] == 3 else img[0]
        ax.imshow(shown.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    elif img.shape[0] == 1:
        ax.imshow(img[0].clamp(-1, 1).numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    else:
        ax.imshow((img.clamp(-1, 1) * 0.5 + 0.5).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def draw_lapgan_levels(out: Dict[str, List[Tensor]], n: int = 4, fig=None):
    """One row per sample: base image, then for each finer level its coarse input l, residual h~, and sum I~."""
    n = min(n, out["images"][0].shape[0])
    levels = len(out["residuals"])
    cols = 1 + 3 * levels
    plt = _plt()
    if fig is None:
        fig = plt.figure(figsize=(1.3 * cols, 1.35 * n + 0.3))
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        s0 = out["images"][0].shape[-1]
        _show(axes[i, 0], out["images"][0][i], title=f"base {s0}x{s0}" if i == 0 else None)
        for k in range(levels):
            s = out["images"][k + 1].shape[-1]
            c = 1 + 3 * k
            _show(axes[i, c], out["coarse"][k][i], title=f"coarse l ({s})" if i == 0 else None)
            _show(axes[i, c + 1], out["residuals"][k][i], residual=True, title=f"residual h~ ({s})" if i == 0 else None)
            _show(axes[i, c + 2], out["images"][k + 1][i], title=f"sum I~ ({s})" if i == 0 else None)
    fig.tight_layout()
    return fig


class LapGANLevels(LiveView):
    """Widget: pick a seed (and a class) and see how each LapGAN level adds detail.

    ``generators`` overrides the per-level modules (e.g. EMA copies). ``.out`` holds the last
    ``sample_levels`` result.
    """

    def __init__(self, model, n: int = 4, generators: Optional[Sequence[nn.Module]] = None) -> None:
        import ipywidgets as W

        super().__init__()
        self.model, self.n, self.generators = model, n, generators
        self.seed = W.IntSlider(value=0, min=0, max=999, description="seed")
        self.digit = W.Dropdown(options=list(range(model.n_classes)), value=0, description="class") \
            if model.n_classes else None
        controls = [self.seed] + ([self.digit] if self.digit is not None else [])
        self.widget = W.VBox([W.HBox(controls), self.output])
        for control in controls:
            control.observe(lambda change: self.update(), names="value")
        self.out: Dict[str, List[Tensor]] = {}
        self.update()

    def update(self) -> None:
        gen = torch.Generator().manual_seed(int(self.seed.value))
        labels = None if self.digit is None else torch.full((self.n,), int(self.digit.value), dtype=torch.long)
        self.out = self.model.sample_levels(self.n, labels=labels, generators=self.generators, generator=gen)
        self.redraw()

    def figure(self):
        """Base image, then each level's coarse input, residual and sum, for the current seed (and class)."""
        return draw_lapgan_levels(self.out, self.n)

    def _view(self):
        return self.widget


@torch.no_grad()
def faded_output(G: nn.Module, level: int, alpha: float, z: Tensor) -> Tensor:
    """G's output with ``level`` on top at fade ``alpha``, on a copy (G's own stage is left alone)."""
    g = copy.deepcopy(G).eval()
    g.set_stage(level, alpha)
    return g(z.to(next(g.parameters()).device)).cpu()


def draw_fade_strip(G: nn.Module, level: int, z: Tensor, alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                    fig=None):
    """Rows: samples; columns: alpha from the old resolution (0) to the new one (1)."""
    if level < 1:
        raise ValueError(f"a fade needs level >= 1 (the 4x4 level has nothing to fade from), got {level}")
    plt = _plt()
    n = z.shape[0]
    if fig is None:
        fig = plt.figure(figsize=(1.4 * len(alphas), 1.4 * n + 0.4))
    axes = fig.subplots(n, len(alphas), squeeze=False)
    r = 4 * 2**level
    for j, a in enumerate(alphas):
        imgs = faded_output(G, level, a, z)
        for i in range(n):
            _show(axes[i, j], imgs[i], title=f"alpha={a:g}" if i == 0 else None)
    fig.suptitle(f"fading in {r}x{r} over {r // 2}x{r // 2}", fontsize=9)
    fig.tight_layout()
    return fig


class FadeSlider(LiveView):
    """Widget: an alpha slider (and a level picker) over a trained PGGAN generator. ``.images`` is the last output."""

    def __init__(self, G: nn.Module, z: Tensor, level: Optional[int] = None, nrow: int = 8) -> None:
        import ipywidgets as W

        super().__init__()
        self.G, self.z, self.nrow = G, z, nrow
        top = G.n_levels - 1 if level is None else level
        self.level = W.IntSlider(value=top, min=1, max=G.n_levels - 1, description="level")
        self.alpha = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha")
        self.widget = W.VBox([W.HBox([self.level, self.alpha]), self.output])
        self.level.observe(lambda change: self.update(), names="value")
        self.alpha.observe(lambda change: self.update(), names="value")
        self.images = torch.empty(0)
        self.update()

    def update(self) -> None:
        level, alpha = int(self.level.value), float(self.alpha.value)
        self.images = faded_output(self.G, level, alpha, self.z)
        self.redraw()

    def figure(self):
        """The samples at the current level and alpha."""
        from ganlib.viz import image_grid

        r = 4 * 2 ** int(self.level.value)
        ax = image_grid(self.images, nrow=self.nrow, title=f"{r // 2}->{r}, alpha = {float(self.alpha.value):.2f}")
        return ax.figure

    def static_figure(self):
        """The fade at the current level over alpha 0 ... 1, four samples."""
        return draw_fade_strip(self.G, int(self.level.value), self.z[:4])

    def _view(self):
        return self.widget
