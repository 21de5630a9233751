"""Chapter 10 explorers for a trained ``StyleGenerator``: style mixing, truncation, stochastic variation.

Each explorer keeps its controls (ipywidgets) and the images for the current control values in
``.images``; changing a control recomputes them. ``show()`` displays the live widget in JupyterLab, its
own output already holding the view for the current values (and redrawn in place, one figure, on every
change); with live drawing off (CI, nbval, smoke, a rendered site: ``ganlib.viz.live_updates_wanted``)
it draws the same view once as a plain matplotlib figure instead.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from ganlib.experiments.stylegan import mix_grid
from ganlib.models.stylegan import StyleGenerator
from ganlib.runtime import eval_mode
from ganlib.viz import image_grid, show_message_in
from ganlib.widgets import LiveView


def _plt():
    import matplotlib.pyplot as plt
    return plt


def _latents(G: StyleGenerator, seeds: Sequence[int]) -> Tensor:
    """One latent per seed, the same on every machine (drawn on CPU, then moved)."""
    device = G.w_avg.device
    return torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]).to(device)


def _parse_seeds(text: str) -> List[int]:
    try:
        seeds = [int(s) for s in text.replace(",", " ").split()]
    except ValueError as err:
        raise ValueError(f"seeds must be whole numbers separated by commas, got {text!r}") from err
    if not seeds:
        raise ValueError("give at least one seed, e.g. '1, 2, 3'")
    return seeds


def _to_hwc(image: Tensor):
    img = image.detach().float().cpu().clamp(-1, 1) * 0.5 + 0.5
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def noise_for_layers(G: StyleGenerator, n: int, enabled: Sequence[bool], generator: Optional[torch.Generator] = None,
                     base: str = "const") -> List[Tensor]:
    """Per-layer noise: fresh N(0, 1) in the ``enabled`` layers; ``base`` ('const' or 'none') elsewhere."""
    if len(enabled) != G.num_layers:
        raise ValueError(f"enabled needs one flag per layer ({G.num_layers}), got {len(enabled)}")
    fresh = G.synthesis.make_noise(n, "random", generator)
    fixed = G.synthesis.make_noise(n, base)
    return [f if on else b for f, b, on in zip(fresh, fixed, enabled)]


@torch.no_grad()
def noise_variation(G: StyleGenerator, z: Tensor, draws: int = 16, enabled: Optional[Sequence[bool]] = None,
                    psi: float = 1.0, seed: int = 0) -> Dict[str, Tensor]:
    """Re-render one latent with ``draws`` noise samples (StyleGAN Fig. 4): images and per-pixel std.

    ``z``: (1, z_dim). Noise is resampled in the ``enabled`` layers (all by default) and held at the
    fixed 'const' images elsewhere. Returns {'images': (draws, C, H, W), 'std': (H, W) std over draws
    averaged over channels}.
    """
    if z.dim() != 2 or z.shape[0] != 1:
        raise ValueError(f"z must be one latent of shape (1, z_dim), got {tuple(z.shape)}")
    if draws < 2:
        raise ValueError(f"need at least 2 noise draws for a standard deviation, got {draws}")
    enabled = [True] * G.num_layers if enabled is None else list(enabled)
    with eval_mode(G):
        ws = G.styles(z, psi).expand(draws, -1, -1)
        noise = noise_for_layers(G, draws, enabled, torch.Generator().manual_seed(seed))
        images = G.synthesis(ws, noise=noise)
    return {"images": images, "std": images.std(dim=0).mean(dim=0)}


class _Explorer(LiveView):
    """Shared plumbing: controls -> recompute ``images`` -> redraw the Output widget (only when live)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: Dict[str, object] = {}
        self._box = None
        self._hold = False  # set while changing several controls at once, to recompute only once

    def _watch(self, controls=None) -> None:
        for control in (controls if controls is not None else self.controls.values()):
            control.observe(lambda _change: None if self._hold else self.update(), names="value")

    def update(self) -> None:
        """Recompute for the current control values and, when live, redraw the widget's output.

        A value the explorer cannot use (seeds that are not numbers) is said in the output when live, where
        the person who typed it is looking; headless it raises.
        """
        try:
            self.compute()
        except ValueError as err:
            if not self.live:
                raise
            show_message_in(self.output, str(err))
            return
        self.redraw()

    @property
    def widget(self):
        """The ipywidgets box (built once): controls, then the output with the view."""
        if self._box is None:
            self._box = self._layout()
        return self._box

    def _layout(self):
        import ipywidgets as W
        return W.VBox([W.HBox(list(self.controls.values())), self.output])

    def _view(self):
        return self.widget

    def compute(self) -> None: ...

    def figure(self): ...


class StyleMixingExplorer(_Explorer):
    """Rows and columns of seeds; cell (i, j) takes layers < crossover from row i and the rest from column j."""

    def __init__(self, G: StyleGenerator, row_seeds: Sequence[int] = (1, 2, 3), col_seeds: Sequence[int] = (4, 5, 6, 7),
                 crossover: int = 4, psi: float = 1.0) -> None:
        import ipywidgets as W

        super().__init__()
        self.G = G
        self.controls = {
            # recompute on Enter or leaving the box, not on every keystroke of a half-typed list
            "rows": W.Text(", ".join(map(str, row_seeds)), description="row seeds", continuous_update=False),
            "cols": W.Text(", ".join(map(str, col_seeds)), description="column seeds", continuous_update=False),
            "crossover": W.IntSlider(crossover, min=0, max=G.num_layers, description="crossover"),
            "psi": W.FloatSlider(psi, min=0.0, max=1.0, step=0.05, description="ψ"),
        }
        self._watch()
        self.compute()

    def compute(self) -> None:
        c = self.controls
        self.row_seeds, self.col_seeds = _parse_seeds(c["rows"].value), _parse_seeds(c["cols"].value)
        self.crossover = c["crossover"].value
        G = self.G
        self.images = mix_grid(G, _latents(G, self.row_seeds), _latents(G, self.col_seeds), self.crossover,
                               psi=c["psi"].value)
        with eval_mode(G), torch.no_grad():
            self.row_images = G(_latents(G, self.row_seeds), psi=c["psi"].value, noise_mode="const")
            self.col_images = G(_latents(G, self.col_seeds), psi=c["psi"].value, noise_mode="const")

    def figure(self):
        plt = _plt()
        r, k = len(self.row_seeds), len(self.col_seeds)
        # constrained layout: tight_layout warned ("Axes that are not compatible with tight_layout") after seed edits
        fig, axes = plt.subplots(r + 1, k + 1, figsize=(1.3 * (k + 1), 1.3 * (r + 1) + 0.3), layout="constrained",
                                 squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for j in range(k):
            axes[0, j + 1].imshow(_to_hwc(self.col_images[j]), cmap="gray")
            axes[0, j + 1].set_title(f"col {self.col_seeds[j]}", fontsize=8)
        for i in range(r):
            axes[i + 1, 0].imshow(_to_hwc(self.row_images[i]), cmap="gray")
            axes[i + 1, 0].set_title(f"row {self.row_seeds[i]}", fontsize=8)
            for j in range(k):
                axes[i + 1, j + 1].imshow(_to_hwc(self.images[i, j]), cmap="gray")
        L = self.G.num_layers
        fig.suptitle(f"layers 0–{self.crossover - 1} from the row, {self.crossover}–{L - 1} from the column",
                     fontsize=9)
        return fig


class TruncationExplorer(_Explorer):
    """The same seeds at one ψ (slider) next to a strip over ψ = 0 … 1: w' = w_avg + ψ (w - w_avg)."""

    def __init__(self, G: StyleGenerator, seeds: Sequence[int] = tuple(range(8)), psi: float = 0.7,
                 cutoff: Optional[int] = None) -> None:
        import ipywidgets as W

        super().__init__()
        self.G, self.seeds = G, list(seeds)
        self.controls = {
            "psi": W.FloatSlider(psi, min=-0.5, max=1.5, step=0.05, description="ψ"),
            "cutoff": W.IntSlider(G.num_layers if cutoff is None else cutoff, min=0, max=G.num_layers,
                                  description="cutoff"),
        }
        self._watch()
        self.compute()

    @torch.no_grad()
    def compute(self) -> None:
        G, c = self.G, self.controls
        z = _latents(G, self.seeds)
        self.psi, self.cutoff = c["psi"].value, c["cutoff"].value
        self.psis = [1.0, 0.75, 0.5, 0.25, 0.0]
        with eval_mode(G):
            self.images = G(z, psi=self.psi, cutoff=self.cutoff, noise_mode="const")
            self.strip = torch.stack([G(z[:4], psi=p, cutoff=self.cutoff, noise_mode="const") for p in self.psis])

    def figure(self):
        plt = _plt()
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1.3, 1]},
                                   layout="constrained")
        image_grid(self.images, nrow=min(8, len(self.images)) // 2 or 1, ax=a,
                   title=f"ψ = {self.psi:.2f}, first {self.cutoff} layers truncated")
        grid = self.strip.transpose(0, 1).reshape(-1, *self.strip.shape[2:])  # rows = seeds, columns = ψ
        image_grid(grid, nrow=len(self.psis), ax=b, title="ψ = " + ", ".join(f"{p:g}" for p in self.psis))
        return fig


class NoiseExplorer(_Explorer):
    """One seed re-rendered under fresh noise: examples, the per-pixel std over draws, per-layer on/off."""

    def __init__(self, G: StyleGenerator, seed: int = 0, draws: int = 16, psi: float = 1.0) -> None:
        import ipywidgets as W

        super().__init__()
        self.G, self.draws, self.psi, self.noise_seed = G, draws, psi, 0
        self.controls = {"seed": W.IntText(seed, description="seed")}
        self.layer_boxes = [W.Checkbox(True, description=f"{i} ({r}²)", indent=False, layout=W.Layout(width="80px"))
                            for i, r in enumerate(G.synthesis.resolutions)]
        self.button = W.Button(description="resample noise")
        self.button.on_click(lambda _b: self.resample())
        self._watch()
        self._watch(self.layer_boxes)
        self.compute()

    @property
    def enabled(self) -> List[bool]:
        return [box.value for box in self.layer_boxes]

    def set_layers(self, enabled: Sequence[bool]) -> None:
        """Switch noise on/off per layer (what ticking the boxes does); recomputes once."""
        if len(enabled) != len(self.layer_boxes):
            raise ValueError(f"need one flag per layer ({len(self.layer_boxes)}), got {len(enabled)}")
        self._hold = True
        try:
            for box, on in zip(self.layer_boxes, enabled):
                box.value = bool(on)
        finally:
            self._hold = False
        self.update()

    def resample(self) -> None:
        self.noise_seed += 1
        self.update()

    def _layout(self):
        import ipywidgets as W
        return W.VBox([W.HBox([self.controls["seed"], self.button]), W.HBox(self.layer_boxes), self.output])

    def compute(self) -> None:
        z = _latents(self.G, [self.controls["seed"].value])
        out = noise_variation(self.G, z, self.draws, self.enabled, self.psi, seed=self.noise_seed)
        self.images, self.std = out["images"], out["std"]

    def figure(self):
        plt = _plt()
        fig, axes = plt.subplots(1, 6, figsize=(11, 2.2), layout="constrained")
        for k in range(4):
            axes[k].imshow(_to_hwc(self.images[k]), cmap="gray")
            axes[k].set_title(f"noise draw {k + 1}", fontsize=8)
        axes[4].imshow(_to_hwc(self.images.mean(0)), cmap="gray")
        axes[4].set_title(f"mean of {self.draws}", fontsize=8)
        im = axes[5].imshow(self.std.cpu().numpy(), cmap="magma")
        on = [i for i, e in enumerate(self.enabled) if e]
        axes[5].set_title(f"std over draws (layers {on})" if len(on) < self.G.num_layers else "std over draws",
                          fontsize=8)
        fig.colorbar(im, ax=axes[5], fraction=0.046)
        for ax in axes:
            ax.set_axis_off()
        return fig
