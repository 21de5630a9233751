"""Image-GAN explorers for chapters 06-07: a latent interpolation slider and a CGAN class picker.

Each object computes its images once (or per control change), exposes them as tensors so tests can
drive the controls without a browser, holds its ipywidgets box in ``widget``, and draws a static
matplotlib figure with ``static_figure()`` for headless runs and the rendered book; ``show()`` picks
one of the two (``ganlib.widgets.LiveView``).

Generators with BatchNorm in train mode are run on the requested latents *together with* a fixed
reference batch of random latents, so the batch statistics are those of ordinary samples, not of a
handful of near-identical points on an interpolation path (the idea of Salimans et al. 2016's
reference batch norm, applied at sampling time only).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ganlib.widgets import LiveView

REFERENCE_BATCH = 128


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between latents a and b (same shape, last dim = z_dim) at t in [0, 1].

    Gaussian latents concentrate near a sphere of radius sqrt(z_dim); slerp keeps the path near it,
    where lerp's midpoint would be atypically short (White 2016, "Sampling generative networks").
    """
    if a.shape != b.shape:
        raise ValueError(f"slerp needs two latents of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if bool((omega.abs() < 1e-6).all()):  # (anti)parallel to numerical precision: fall back to lerp
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def _has_batchnorm(G: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules())


@torch.no_grad()
def render(G: nn.Module, z: Tensor, labels: Optional[Tensor] = None, seed: int = 12345) -> Tensor:
    """G(z) (or G(z, labels)) on CPU, with a reference batch when G is a train-mode BatchNorm network."""
    dev = next(G.parameters()).device
    z = z.to(dev)
    labels = None if labels is None else labels.to(dev)
    n = len(z)
    if G.training and _has_batchnorm(G):
        gen = torch.Generator().manual_seed(seed)
        z = torch.cat([z, torch.randn(REFERENCE_BATCH, z.shape[1], generator=gen).to(dev)])
        if labels is not None:
            n_classes = getattr(G, "n_classes", int(labels.max()) + 1)
            labels = torch.cat([labels, torch.randint(n_classes, (REFERENCE_BATCH,), generator=gen).to(dev)])
    out = G(z) if labels is None else G(z, labels)
    return out[:n].cpu()


class LatentInterpolation(LiveView):
    """Walk from the latent of ``seed_a`` to that of ``seed_b`` by slerp; a slider picks the point.

    Attributes:
        ts: the ``frames`` interpolation points in [0, 1]; ``images``: G at each, (frames, C, H, W).
        slider: the ipywidgets slider; ``current``: the image the slider shows; ``widget``: slider and image.
    """

    def __init__(self, G: nn.Module, seed_a: int = 0, seed_b: int = 1, frames: int = 11,
                 label: Optional[int] = None) -> None:
        if frames < 2:
            raise ValueError(f"frames must be >= 2, got {frames}")
        z_dim = getattr(G, "z_dim", None)
        if not isinstance(z_dim, int):
            raise ValueError(f"{type(G).__name__} has no integer z_dim; interpolation needs to know the latent size")
        self.G, self.seed_a, self.seed_b, self.label = G, seed_a, seed_b, label
        self.z_a = torch.randn(1, z_dim, generator=torch.Generator().manual_seed(seed_a))
        self.z_b = torch.randn(1, z_dim, generator=torch.Generator().manual_seed(seed_b))
        self.ts = torch.linspace(0, 1, frames)
        self.latents = torch.cat([slerp(self.z_a, self.z_b, float(t)) for t in self.ts])
        labels = None if label is None else torch.full((frames,), int(label), dtype=torch.long)
        self.images = render(G, self.latents, labels)
        self.index = 0
        super().__init__()
        import ipywidgets as widgets

        self.slider = widgets.IntSlider(value=0, min=0, max=frames - 1, description=f"seed {seed_a} → {seed_b}",
                                        continuous_update=False)
        self.slider.observe(self._on_slide, names="value")
        self.widget = widgets.VBox([self.slider, self.output])

    def _on_slide(self, change) -> None:
        self.index = int(change["new"])
        self.redraw()

    @property
    def current(self) -> Tensor:
        """The image at the slider's position, (C, H, W)."""
        return self.images[self.index]

    def figure(self):
        """The image at the slider's position, titled with its t."""
        import matplotlib.pyplot as plt
        from ganlib.viz import image_grid

        fig, ax = plt.subplots(figsize=(2.2, 2.4))
        image_grid(self.current[None], nrow=1, ax=ax, title=f"t = {float(self.ts[self.index]):.2f}")
        return fig

    def _view(self):
        return self.widget

    def static_figure(self):
        """The whole path as one strip, seed_a on the left and seed_b on the right (the headless view)."""
        import matplotlib.pyplot as plt
        from ganlib.viz import image_grid

        fig, ax = plt.subplots(figsize=(1.0 * len(self.ts), 1.4))
        image_grid(self.images, nrow=len(self.ts), ax=ax,
                   title=f"slerp from seed {self.seed_a} (left) to seed {self.seed_b} (right)")
        return fig


class ClassPicker(LiveView):
    """Pick a class; the grid redraws with the same ``n`` latents and that label (a CGAN's knob).

    Attributes:
        class_names: one name per class; ``images``: the current grid (n, C, H, W); ``dropdown``; ``widget``:
            the dropdown and the grid.
    """

    def __init__(self, G: nn.Module, n: int = 16, class_names: Optional[Sequence[str]] = None, seed: int = 0) -> None:
        n_classes = getattr(G, "n_classes", None)
        if not isinstance(n_classes, int):
            raise ValueError(f"{type(G).__name__} has no n_classes attribute; ClassPicker needs a conditional G")
        if class_names is not None and len(class_names) != n_classes:
            raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
        self.G, self.n, self.n_classes = G, n, n_classes
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        self.z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        super().__init__()
        import ipywidgets as widgets

        self.dropdown = None
        self.pick(0)
        self.dropdown = widgets.Dropdown(options=[(name, c) for c, name in enumerate(self.class_names)],
                                         value=self.label, description="class")
        self.dropdown.observe(lambda change: self.pick(change["new"]), names="value")
        self.widget = widgets.VBox([self.dropdown, self.output])

    def pick(self, label: int) -> Tensor:
        """Redraw the grid for ``label`` and return it (the dropdown follows)."""
        if not 0 <= int(label) < self.n_classes:
            raise ValueError(f"label must be in [0, {self.n_classes - 1}], got {label}")
        if self.dropdown is not None and self.dropdown.value != int(label):
            self.dropdown.value = int(label)  # its observer calls pick again, which renders and draws
            return self.images
        self.label = int(label)
        self.images = render(self.G, self.z, torch.full((self.n,), self.label, dtype=torch.long))
        self.redraw()
        return self.images

    def figure(self):
        """The grid for the current class."""
        import matplotlib.pyplot as plt
        from ganlib.viz import image_grid

        fig, ax = plt.subplots(figsize=(4, 4))
        image_grid(self.images, nrow=int(math.sqrt(self.n)) or 1, ax=ax, title=f"class {self.class_names[self.label]}")
        return fig

    def _view(self):
        return self.widget

    def static_figure(self, per_class: int = 8):
        """One row per class, the same ``per_class`` latents in every row: only the label changes."""
        import matplotlib.pyplot as plt
        from ganlib.viz import image_grid

        k = min(per_class, self.n)
        z = self.z[:k].repeat(self.n_classes, 1)
        labels = torch.arange(self.n_classes).repeat_interleave(k)
        fig, ax = plt.subplots(figsize=(k * 0.9, self.n_classes * 0.9 + 0.4))
        image_grid(render(self.G, z, labels), nrow=k, ax=ax, title="rows: " + ", ".join(self.class_names))
        return fig
