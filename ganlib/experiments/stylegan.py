"""Chapter 10 measurements on a StyleGAN trained on the procedural shapes (``ganlib.data.shapes``).

The shapes dataset knows its ground-truth factors (shape, colour, size, x, y, background), so a
small *factor network* trained on real renders can read them off any image, generated ones included.
With it we measure:

* entanglement: how well a *linear* probe predicts the factors of G's images from z vs from w
  (StyleGAN Sec. 4.2 uses linear separability of w for the same question);
* what each layer range controls: copy the styles of one range from image B into image A and see
  which factors follow B (StyleGAN Sec. 3.1, Fig. 3, made quantitative);
* the truncation trade-off: Fréchet distance in the factor network's features, and diversity, vs psi.

Two measurements need no factor network: ``mix_grid`` (the style-mixing figure, Fig. 3) and
``droplet_ratios``, how spiky the maps entering each AdaIN are (StyleGAN2 Sec. 2).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlib.data.mnist import data_dir
from ganlib.data.shapes import BACKGROUNDS, PALETTE, POSITION_RANGE, SHAPE_NAMES, SIZE_RANGE, render, sample_factors
from ganlib.metrics.classifier import check_sha256
from ganlib.metrics.frechet import frechet_distance
from ganlib.models.stylegan import StyleGenerator
from ganlib.runtime import eval_mode

CATEGORICAL = {"shape": len(SHAPE_NAMES), "colour": len(PALETTE), "background": len(BACKGROUNDS)}
CONTINUOUS = {"size": SIZE_RANGE, "x": POSITION_RANGE, "y": POSITION_RANGE}
FACTORS = tuple(CATEGORICAL) + tuple(CONTINUOUS)
FACTOR_NET_FILE = "factor_net.pt"
# Written by scripts/train_factor_net.py after training; load_factor_net checks the shipped file against it.
FACTOR_NET_SHA256 = "a456fb6dcbab6abcf1e6893f98a94eaf2de67e15a5e969d0a0296cc355aef087"


class FactorNet(nn.Module):
    """A small CNN reading the six factors of a 32x32 shapes image: 3 classifiers and 3 regressors."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),                  # 16x16
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),      # 8x8
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),  # 4x4
            nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.ReLU())
        self.heads = nn.ModuleDict({k: nn.Linear(128, n) for k, n in CATEGORICAL.items()})
        self.regress = nn.Linear(128, len(CONTINUOUS))  # factors rescaled to [0, 1]

    def features(self, x: Tensor) -> Tensor:
        """The 128-d penultimate features (used for the Fréchet distance)."""
        if x.dim() != 4 or x.shape[1:] != (3, 32, 32):
            raise ValueError(f"FactorNet reads (N, 3, 32, 32) images in [-1, 1], got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        h = self.features(x)
        out = {k: head(h) for k, head in self.heads.items()}
        out.update(zip(CONTINUOUS, self.regress(h).unbind(1)))
        return out


def _scaled(factors: Dict[str, Tensor], key: str) -> Tensor:
    low, high = CONTINUOUS[key]
    return (factors[key] - low) / (high - low)


def train_factor_net(steps: int = 300, batch_size: int = 64, seed: int = 0,
                     device: Optional[torch.device] = None) -> Tuple[FactorNet, Dict[str, float]]:
    """Train ``FactorNet`` on fresh renders; returns it (eval mode) and its held-out scores per factor
    (accuracy for shape/colour/background, R^2 for size/x/y)."""
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    net = FactorNet().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        f = sample_factors(batch_size, gen)
        out = net(render(f, 32).to(device))
        loss = sum(F.cross_entropy(out[k], f[k].to(device)) for k in CATEGORICAL)
        loss = loss + sum(10 * F.mse_loss(out[k], _scaled(f, k).to(device)) for k in CONTINUOUS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval().requires_grad_(False)
    return net, score_factor_net(net, seed + 10_000)


def score_factor_net(net: FactorNet, seed: int = 12_024, n: int = 1000) -> Dict[str, float]:
    """Held-out scores of a factor network on ``n`` fresh renders: accuracy per class factor, R^2 per continuous one."""
    device = next(net.parameters()).device
    f = sample_factors(n, torch.Generator().manual_seed(seed))
    pred = predict_factors(net, render(f, 32).to(device))
    truth = {k: (f[k].float() if k in CONTINUOUS else f[k]) for k in FACTORS}
    return {k: _score(pred[k].cpu(), truth[k], k) for k in FACTORS}


def factor_net_path() -> Path:
    return data_dir() / FACTOR_NET_FILE


def load_factor_net(device: Optional[torch.device] = None) -> FactorNet:
    """The shipped factor network (``scripts/train_factor_net.py``), checksum-checked, in eval mode on ``device``.

    One fixed network, so every score built on it (chapter 10, the StyleGAN reference's manifest) is comparable.
    """
    path = factor_net_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: restore it with `git checkout -- data/{FACTOR_NET_FILE}` or "
                                "re-create it with `python scripts/train_factor_net.py` (about a minute)")
    check_sha256(path, FACTOR_NET_SHA256, f"restore it with `git checkout -- data/{FACTOR_NET_FILE}`")
    net = FactorNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.to(device or torch.device("cpu")).eval().requires_grad_(False)


@torch.no_grad()
def predict_factors(net: FactorNet, images: Tensor, batch_size: int = 500) -> Dict[str, Tensor]:
    """Predicted factors in the dataset's units: class indices, and size/x/y as fractions of the side."""
    outs: Dict[str, List[Tensor]] = {k: [] for k in FACTORS}
    for chunk in images.split(batch_size):
        out = net(chunk)
        for k in CATEGORICAL:
            outs[k].append(out[k].argmax(1))
        for k, (low, high) in CONTINUOUS.items():
            outs[k].append(low + (high - low) * out[k])
    return {k: torch.cat(v) for k, v in outs.items()}


@torch.no_grad()
def features(net: FactorNet, images: Tensor, batch_size: int = 500) -> Tensor:
    return torch.cat([net.features(chunk) for chunk in images.split(batch_size)])


def _score(pred: Tensor, truth: Tensor, key: str) -> float:
    """Accuracy for a categorical factor, R^2 for a continuous one."""
    if key in CATEGORICAL:
        return (pred == truth).float().mean().item()
    truth = truth.float()
    return 1.0 - ((pred - truth) ** 2).sum().item() / max(((truth - truth.mean()) ** 2).sum().item(), 1e-12)


def linear_probe(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, categorical: bool,
                 ridge: float = 1e-3) -> float:
    """Fit a ridge-regularised linear map x -> y (one-hot y if ``categorical``) on train, score on test.

    Returns test accuracy (argmax of the linear scores) or test R^2. Closed form, so no tuning noise.
    """
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8

    def design(x: Tensor) -> Tensor:
        x = ((x - mu) / sd).double()
        return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], 1)

    a = design(x_train)
    n_classes = int(max(y_train.max(), y_test.max()).item()) + 1 if categorical else 0
    target = F.one_hot(y_train.long(), n_classes).double() if categorical else y_train.double().view(-1, 1)
    eye = torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    coef = torch.linalg.solve(a.T @ a + ridge * len(a) * eye, a.T @ target)
    pred = design(x_test) @ coef
    if categorical:
        return (pred.argmax(1).cpu() == y_test.cpu()).float().mean().item()
    return _score(pred[:, 0].float().cpu(), y_test.float().cpu(), "size")


def effective_dimension(x: Tensor) -> float:
    """Participation ratio (sum lambda)^2 / sum lambda^2 of the covariance eigenvalues of the rows of ``x``.

    d for an isotropic cloud in d dimensions, k when the variance is spread evenly over k directions, near 1
    when one direction dominates. Used to see how much a (random, or barely trained) mapping network
    squeezes z: deep random LeakyReLU MLPs concentrate their outputs in a few directions.
    """
    if x.dim() != 2 or len(x) < 2:
        raise ValueError(f"x must be (N >= 2, d) samples in rows, got {tuple(x.shape)}")
    centred = (x - x.mean(0)).double()
    eig = torch.linalg.eigvalsh(centred.T @ centred / (len(x) - 1)).clamp(min=0)
    if eig.sum() <= 0:
        raise ValueError("x has zero variance: every row is the same, so its dimension is undefined")
    return float(eig.sum() ** 2 / (eig ** 2).sum())


@torch.no_grad()
def generate_with_latents(G: StyleGenerator, n: int, seed: int = 0, psi: float = 1.0,
                          batch_size: int = 500) -> Dict[str, Tensor]:
    """z, w and images (const noise, eval mode) for ``n`` latents drawn from ``seed``."""
    device = G.w_avg.device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    ws, images = [], []
    with eval_mode(G):
        for chunk in z.split(batch_size):
            ws.append(G.mapping(chunk))
            images.append(G(chunk, psi=psi, noise_mode="const"))
    return {"z": z, "w": torch.cat(ws), "images": torch.cat(images)}


def entanglement_probe(G: StyleGenerator, net: FactorNet, n_train: int = 2000, n_test: int = 1000,
                       seed: int = 0, mappings: Optional[Dict[str, nn.Module]] = None) -> Dict[str, Dict[str, float]]:
    """Linear-probe scores for each factor of G's images, read from z and from w = f(z).

    ``mappings``: extra named latent maps to probe (e.g. an untrained mapping network as a control).
    Returns {latent name: {factor: accuracy or R^2}}.
    """
    out = generate_with_latents(G, n_train + n_test, seed)
    pred = predict_factors(net, out["images"])
    latents = {"z": out["z"], "w": out["w"]}
    with torch.no_grad():
        for name, m in (mappings or {}).items():
            latents[name] = m(out["z"])
    result = {}
    for name, x in latents.items():
        result[name] = {k: linear_probe(x[:n_train], pred[k][:n_train], x[n_train:], pred[k][n_train:],
                                        categorical=k in CATEGORICAL) for k in FACTORS}
    return result


def layer_ranges(G: StyleGenerator) -> Dict[str, Tuple[int, int]]:
    """Layer index ranges [start, stop) by resolution, e.g. {'4x4': (0, 2), '8x8': (2, 4), ...}."""
    ranges: Dict[str, Tuple[int, int]] = {}
    for i, res in enumerate(G.synthesis.resolutions):
        key = f"{res}x{res}"
        start = ranges.get(key, (i, i))[0]
        ranges[key] = (start, i + 1)
    return ranges


@torch.no_grad()
def swapped_factors(G: StyleGenerator, net: FactorNet, n: int, seed: int, ranges: Dict[str, Tuple[int, int]]
                    ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Dict[str, Tensor]]]:
    """The factors ``net`` reads off ``n`` image pairs (A, B) drawn from ``seed`` (const noise, eval mode), and off
    A with the styles of each layer range [start, stop) taken from B (StyleGAN Sec. 3.1, Fig. 3).

    Returns (A's factors, B's factors, {range name: the mixed images' factors}).
    """
    with eval_mode(G):
        device = G.w_avg.device
        g = torch.Generator().manual_seed(seed)
        za, zb = torch.randn(n, G.z_dim, generator=g).to(device), torch.randn(n, G.z_dim, generator=g).to(device)
        wa, wb = G.styles(za), G.styles(zb)
        read = lambda ws: predict_factors(net, G.synthesis(ws, noise_mode="const"))  # noqa: E731
        fa, fb = read(wa), read(wb)
        layer = torch.arange(G.num_layers, device=device).view(1, -1, 1)
        mixed = {name: read(torch.where((layer >= start) & (layer < stop), wb, wa))
                 for name, (start, stop) in ranges.items()}
    return fa, fb, mixed


def style_transfer_scores(G: StyleGenerator, net: FactorNet, n: int = 500, seed: int = 0,
                          ranges: Optional[Dict[str, Tuple[int, int]]] = None) -> Dict[str, Dict[str, float]]:
    """For each layer range: take image A's styles, replace that range by image B's, and measure how far
    each factor moves from A's value to B's (StyleGAN Fig. 3 as numbers).

    Score per factor: categorical -- P(mixed == B | A != B); continuous -- least-squares slope of
    (mixed - A) on (B - A). 0 = the range does not touch that factor, 1 = it carries it completely.
    """
    ranges = dict(ranges or layer_ranges(G))
    ranges.setdefault("all", (0, G.num_layers))
    fa, fb, mixed = swapped_factors(G, net, n, seed, ranges)
    scores: Dict[str, Dict[str, float]] = {}
    for name, fm in mixed.items():
        row = {}
        for k in FACTORS:
            if k in CATEGORICAL:
                differ = fa[k] != fb[k]
                row[k] = (fm[k][differ] == fb[k][differ]).float().mean().item() if differ.any() else float("nan")
            else:
                d_b, d_m = fb[k] - fa[k], fm[k] - fa[k]
                row[k] = (d_b * d_m).sum().item() / max(d_b.pow(2).sum().item(), 1e-12)
        scores[name] = row
    return scores


def truncation_sweep(G: StyleGenerator, net: FactorNet, real: Tensor, psis: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                     n: int = 1000, seed: int = 0) -> Dict[str, List[float]]:
    """Quality vs diversity as psi varies: Fréchet distance to ``real`` in FactorNet features, the mean
    pairwise feature distance (diversity), the number of (shape, colour, background) combinations seen
    (of 96), and the mean shape-classifier confidence (a proxy for "clean" images)."""
    real_feats = features(net, real)
    out: Dict[str, List[float]] = {"psi": [], "fd": [], "diversity": [], "combos": [], "confidence": []}
    for psi in psis:
        images = generate_with_latents(G, n, seed, psi=psi)["images"]
        feats = features(net, images)
        pred = predict_factors(net, images)
        combos = pred["shape"] * 100 + pred["colour"] * 10 + pred["background"]
        with torch.no_grad():
            conf = F.softmax(net(images[:500])["shape"], 1).max(1).values.mean().item()
        out["psi"].append(float(psi))
        with warnings.catch_warnings():  # psi = 0: all samples equal, a singular covariance is expected
            warnings.simplefilter("ignore")
            out["fd"].append(frechet_distance(feats, real_feats))
        out["diversity"].append(torch.pdist(feats[:500]).mean().item())
        out["combos"].append(float(combos.unique().numel()))
        out["confidence"].append(conf)
    return out


# --- style-mixing grids and droplets -------------------------------------------------------------

@torch.no_grad()
def mix_grid(G: StyleGenerator, z_rows: Tensor, z_cols: Tensor, crossover: int, psi: float = 1.0,
             noise_mode: str = "const") -> Tensor:
    """Images (R, C, ...) where cell (i, j) takes layers < crossover from row i's w and the rest from column j's.

    Small ``crossover`` copies only the coarse layers of the row source; large copies nearly everything.
    """
    if not 0 <= crossover <= G.num_layers:
        raise ValueError(f"crossover must be in [0, {G.num_layers}], got {crossover}")
    with eval_mode(G):
        ws_r, ws_c = G.styles(z_rows, psi), G.styles(z_cols, psi)
        r, c = len(z_rows), len(z_cols)
        layer = torch.arange(G.num_layers, device=ws_r.device).view(1, 1, -1, 1)
        ws = torch.where(layer < crossover, ws_r[:, None], ws_c[None, :]).reshape(r * c, G.num_layers, -1)
        images = G.synthesis(ws, noise_mode=noise_mode)
    return images.view(r, c, *images.shape[1:])


def droplet_ratio(features: Tensor) -> float:
    """How spiky feature maps are: the median, over samples and channels, of max |x - mean| / std per map.

    About 2-4 for smooth random maps; a generator that hides one huge value from AdaIN's normalisation
    (StyleGAN2 Sec. 2, the "droplet" artifact) pushes it towards sqrt(H*W), the value of a single spike.
    """
    if features.dim() != 4:
        raise ValueError(f"expected feature maps (N, C, H, W), got {tuple(features.shape)}")
    centred = features - features.mean(dim=(2, 3), keepdim=True)
    std = centred.pow(2).mean(dim=(2, 3)).sqrt()
    return (centred.abs().amax(dim=(2, 3)) / (std + 1e-8)).median().item()


@torch.no_grad()
def style_layer_features(G: StyleGenerator, z: Tensor) -> List[Tensor]:
    """The features entering each style layer's AdaIN (for 'demod': its output before the gain), const noise."""
    with eval_mode(G):
        ws = G.styles(z)
        noise = G.synthesis.make_noise(len(z), "const")
        x = G.synthesis.const.expand(len(z), -1, -1, -1)
        features = []
        for i, layer in enumerate(G.synthesis.layers):
            features.append(layer.features(x, ws[:, i], noise[i]))
            x = layer.restyle(features[-1], ws[:, i])
    return features


def droplet_ratios(G: StyleGenerator, z: Tensor) -> List[float]:
    """``droplet_ratio`` of each style layer's features (``style_layer_features``) for latents z."""
    return [droplet_ratio(h) for h in style_layer_features(G, z)]
