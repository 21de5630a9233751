"""Plots every chapter shares: image grids, loss/diagnostic curves, the 2-D GAN-Lab view, live updates.

Live plotting redraws one figure in place while training in JupyterLab; when there is no live
front end to watch (CI, nbval, ``GANLIB_SCALE=smoke``, a plain script) it draws only the final figure.
``GANLIB_LIVE`` (see ``live_updates_wanted``) overrides that guess either way.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Iterable, Optional, Sequence

import matplotlib
import torch
from torch import Tensor

from ganlib.runtime import scale
from ganlib.hooks import Hook
from ganlib.train import Trainer


LIVE_CHOICES = {"1": True, "on": True, "true": True, "yes": True, "0": False, "off": False, "false": False,
                "no": False, "": None, "auto": None}


def live_updates_wanted() -> bool:
    """Whether plots and widgets redraw live; ``GANLIB_LIVE`` decides, read here and nowhere else.

    ``GANLIB_LIVE=1`` turns live drawing on everywhere, even at ``smoke`` and under CI (a browser test
    drives the widgets at smoke); ``GANLIB_LIVE=0`` turns it off (static figures only: a rendered site);
    unset (or ``auto``) means on in an interactive Jupyter kernel with a person watching, off in CI, at
    ``smoke`` and in scripts.
    """
    value = os.environ.get("GANLIB_LIVE", "").strip().lower()
    if value not in LIVE_CHOICES:
        raise ValueError(f"GANLIB_LIVE={value!r} is not a choice; use 1 (live drawing on), 0 (static figures "
                         "only) or leave it unset (on in JupyterLab, off in CI, at smoke and in scripts).")
    if LIVE_CHOICES[value] is not None:
        return LIVE_CHOICES[value]
    if os.environ.get("CI") or scale() == "smoke":
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _plt():
    import matplotlib.pyplot as plt
    return plt


def show_in(output, fig) -> None:
    """Make the ipywidgets ``output`` show ``fig``, and only it, as one PNG; ``fig`` is closed.

    The PNG is rendered here instead of calling ``plt.show()`` inside the output because pyplot's show
    displays every figure still open (a figure left open by one redraw reappears at the next, so the view
    grows a second figure) and shows nothing under a non-interactive backend such as Agg.
    """
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    _plt().close(fig)
    with output:
        output.clear_output(wait=True)  # swap in the new image without the view collapsing in between
        display(Image(data=buffer.getvalue(), format="png"))


def show_message_in(output, text: str) -> None:
    """Make the ipywidgets ``output`` show ``text`` (e.g. why a control's value was refused) instead of a figure."""
    from IPython.display import display

    with output:
        output.clear_output(wait=True)
        display({"text/plain": text}, raw=True)


def image_grid(images: Tensor, nrow: int = 8, ax=None, title: Optional[str] = None):
    """Show images in [-1, 1] (N, C, H, W) as one grid on ``ax`` (a new figure if None). Returns the axes."""
    from torchvision.utils import make_grid

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid expects (N, 1 or 3, H, W) images, got {tuple(images.shape)}")
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1) * 0.5 + 0.5, nrow=nrow, padding=2, pad_value=1.0)
    if ax is None:
        _, ax = _plt().subplots(figsize=(min(8, 1.0 * nrow), min(8, 1.0 * len(images) / nrow + 0.5)))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_history(history: Dict[str, Sequence[float]], keys: Iterable[str] = ("d_loss", "g_loss"), ax=None,
                 title: Optional[str] = None):
    """Line plot of logged values against the step."""
    if ax is None:
        _, ax = _plt().subplots(figsize=(6, 3.2))
    for key in keys:
        if key not in history:
            raise KeyError(f"{key!r} was not logged; available: {', '.join(sorted(history))}")
        ax.plot(history["step"], history[key], label=key)
    ax.set_xlabel("generator step")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return ax


def plot_2d(real: Tensor, fake: Tensor, D: Optional[torch.nn.Module] = None, g_loss: Optional[Callable] = None,
            ax=None, lim: Optional[float] = None, arrows: int = 200, title: Optional[str] = None):
    """GAN-Lab style view: real vs fake points, D's probability as contours, and arrows showing where
    the generator's loss pushes each fake point (minus its gradient w.r.t. the point)."""
    plt = _plt()
    real, fake = real.detach().float().cpu(), fake.detach().float().cpu()
    if real.dim() != 2 or real.shape[1] != 2 or fake.dim() != 2 or fake.shape[1] != 2:
        raise ValueError(f"plot_2d needs (N, 2) point sets, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    if lim is None:
        lim = float(torch.cat([real, fake]).abs().quantile(0.99)) * 1.15 + 1e-3
    if D is not None:
        dev = next(D.parameters()).device
        xs = torch.linspace(-lim, lim, 120)
        gx, gy = torch.meshgrid(xs, xs, indexing="xy")
        pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(dev)
        with torch.no_grad():
            prob = torch.sigmoid(D(pts)).cpu().view(120, 120)
        cs = ax.contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.35, vmin=0, vmax=1)
        ax.figure.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=4, c="tab:blue", alpha=0.5, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:orange", alpha=0.5, label="generated")
    if D is not None and g_loss is not None and arrows:
        dev = next(D.parameters()).device
        pts = fake[:arrows].clone().to(dev).requires_grad_(True)
        (grad,) = torch.autograd.grad(g_loss(D(pts)) * len(pts), pts)
        move = -grad.cpu()
        move = move / (move.norm(dim=1, keepdim=True).mean() + 1e-12) * lim * 0.06
        ax.quiver(fake[:arrows, 0], fake[:arrows, 1], move[:, 0], move[:, 1], angles="xy", scale_units="xy",
                  scale=1, width=0.003, color="k", alpha=0.6)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, frameon=False, markerscale=3)
    if title:
        ax.set_title(title)
    return ax


class LivePlot(Hook):
    """Redraw ``draw(trainer, fig)`` every ``every`` steps in JupyterLab; headless, draw once at the end."""

    def __init__(self, draw: Callable[[Trainer, "matplotlib.figure.Figure"], None], every: int = 200,
                 figsize=(10, 3.5)) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.draw, self.every, self.figsize = draw, every, figsize
        self.live = live_updates_wanted()
        self._handle = None

    def _render(self, trainer: Trainer):
        plt = _plt()
        fig = plt.figure(figsize=self.figsize)
        self.draw(trainer, fig)
        fig.tight_layout()
        return fig

    def on_step_end(self, trainer: Trainer, step: int, logs) -> None:
        if not self.live or step % self.every:
            return
        from IPython.display import display

        fig = self._render(trainer)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        _plt().close(fig)

    def on_fit_end(self, trainer: Trainer) -> None:
        fig = self._render(trainer)
        if self.live and self._handle is not None:
            self._handle.update(fig)
            _plt().close(fig)
        else:
            _plt().show()
