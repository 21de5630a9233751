"""A small MNIST classifier shipped with the repo, and the scores built on it (no Inception needed).

The network (``MnistCNN``) is trained once by ``scripts/train_classifier.py`` on the bundled train
split (4,000 digits) and shipped as ``data/mnist_classifier.pt`` with the checksum below. On top of it:

* ``classifier_fd``     -- Fréchet distance in its 128-d penultimate feature space (the FID recipe of
  Heusel et al. 2017 with a LeNet-style network instead of Inception, as in Bińkowski et al. 2018);
* ``class_histogram`` / ``kl_to_uniform`` -- which digits a generator draws and how unevenly;
* ``conditional_accuracy`` -- how often a conditional generator draws the digit it was asked for;
* ``real_floor``        -- the same Fréchet distance between two disjoint halves of real digits;
* ``stacked_mode_stats`` -- Stacked MNIST modes covered and KL(generated || uniform) (VEEGAN/PacGAN protocol).

Classifier-FD numbers are only comparable with numbers from this same network, so always print a
model's score beside ``real_floor()``: a perfect generator cannot go below it with the same N.

32x32 inputs are accepted by cropping the central 28x28: ``ganlib.data.mnist(size=32)`` pads each
digit by 2 pixels, so the crop is the exact inverse (a resize would blur the strokes instead).
"""
from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch
from scipy.linalg import LinAlgWarning
from torch import Tensor, nn

from ganlib.data.mnist import data_dir
from ganlib.metrics.frechet import frechet_distance

CLASSIFIER_FILE = "mnist_classifier.pt"
# Written by scripts/train_classifier.py after training; it checks the shipped file on every load.
CLASSIFIER_SHA256 = "1acba134cef3b12d9fbb0846b180ef7e855412c25d38c534b81dee077c3f1973"
NUM_FEATURES = 128


class MnistCNN(nn.Module):
    """Three 3x3 conv blocks (32, 64, 128 channels) with two max-pools, global average pooling, a linear head.

    About 94k parameters (0.4 MB in float32). ``features(x)`` is the 128-d pooled vector used for
    Fréchet distance; ``forward(x)`` returns the 10 class logits.
    """

    num_features = NUM_FEATURES

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            block(32, 64), nn.MaxPool2d(2),                              # 14 -> 7
            block(64, NUM_FEATURES),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(NUM_FEATURES, 10)

    @staticmethod
    def prepare(x: Tensor) -> Tensor:
        """Check the input and bring (N, 1, 32, 32) down to (N, 1, 28, 28) by dropping the 2-pixel pad."""
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 1 or tuple(x.shape[2:]) not in ((28, 28), (32, 32)):
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"the MNIST classifier takes (N, 1, 28, 28) or (N, 1, 32, 32) images in [-1, 1], got "
                             f"{shape}; for Stacked MNIST classify each colour channel separately "
                             "(ganlib.metrics.classifier.stacked_labels)")
        if x.shape[-1] == 32:
            x = x[:, :, 2:30, 2:30]
        return x.float()

    def features(self, x: Tensor) -> Tensor:
        """The 128-d feature vector (global average of the last conv block), (N, 128)."""
        return self.body(self.prepare(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, 10)."""
        return self.head(self.dropout(self.features(x)))


def classifier_path() -> Path:
    """Where the shipped weights live (``data/mnist_classifier.pt``; ``GANLIB_DATA`` moves ``data/``)."""
    return data_dir() / CLASSIFIER_FILE


def sha256_of(path: Union[str, Path]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_sha256(path: Path, expected: str, fix: str) -> None:
    """Refuse a shipped weights file whose sha256 is not the recorded ``expected``; ``fix`` says how to restore it."""
    digest = sha256_of(path)
    if digest != expected:
        raise ValueError(f"{path} does not match the recorded checksum (sha256 {digest[:12]}..., expected "
                         f"{expected[:12]}...): the file is corrupt or was retrained without recording its "
                         f"checksum; {fix}")


def ship_weights(net: nn.Module, path: Path, source: Union[str, Path], constant: str) -> str:
    """The tail of ``scripts/train_*.py``: save ``net``'s weights to ``path``, record their sha256 as
    ``constant = "<hex>"`` in the Python file ``source`` (where its loader checks it), say so, return the digest."""
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, path)
    digest, source = sha256_of(path), Path(source)
    new, count = re.subn(rf'{constant} = "[0-9a-f]{{64}}"', f'{constant} = "{digest}"', source.read_text())
    if count != 1:
        raise RuntimeError(f"could not find the {constant} line in {source}")
    source.write_text(new)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), sha256 {digest}")
    return digest


_CACHE: Dict[str, MnistCNN] = {}


def load_classifier(device: Optional[Union[str, torch.device]] = None) -> MnistCNN:
    """The shipped classifier in eval mode on ``device`` (default ``ganlib.device()``), checksum verified."""
    from ganlib.runtime import device as default_device

    dev = torch.device(device) if device is not None else default_device()
    key = str(dev)
    if key in _CACHE:
        return _CACHE[key]
    path = classifier_path()
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights {path} are missing; they ship with the repository -- restore "
                                "them with `git checkout data/mnist_classifier.pt`, or retrain with "
                                "`python scripts/train_classifier.py`")
    check_sha256(path, CLASSIFIER_SHA256, "restore it with `git checkout data/mnist_classifier.pt`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = MnistCNN()
    net.load_state_dict(state)
    net = net.to(dev).eval().requires_grad_(False)
    _CACHE[key] = net
    return net


@torch.no_grad()
def _batched(fn, images: Tensor, batch_size: int = 500) -> Tensor:
    net = load_classifier()
    dev = next(net.parameters()).device
    outs = [fn(images[i:i + batch_size].to(dev)) for i in range(0, len(images), batch_size)]
    return torch.cat(outs).cpu()


def features(images: Tensor) -> Tensor:
    """Classifier features (N, 128) of images (N, 1, 28|32, 28|32) in [-1, 1], computed in batches."""
    return _batched(load_classifier().features, images)


def predict(images: Tensor) -> Tensor:
    """Predicted digit (N,) for images (N, 1, 28|32, 28|32) in [-1, 1]."""
    return _batched(load_classifier(), images).argmax(dim=1)


def classifier_fd(fake_images: Tensor, real_images: Tensor) -> float:
    """Fréchet distance between generated and real digits in the classifier's 128-d feature space.

    Use the same number of images on both sides as ``real_floor`` does, since the estimate is biased
    upwards for small N; 1,000 vs 1,000 is a sensible default for this 128-d space.
    """
    fake, real = features(fake_images), features(real_images)
    with warnings.catch_warnings():
        # An untrained or collapsed generator gives (near-)degenerate features; scipy then warns that the
        # product of covariances is singular. The distance is still finite and meaningful (large), so the
        # warning would only clutter every early evaluation in a training curve.
        warnings.simplefilter("ignore", category=LinAlgWarning)
        return frechet_distance(fake, real)


def real_floor(n: Optional[int] = None, size: int = 28, seed: int = 0) -> float:
    """Classifier FD between two disjoint random halves of all 5,000 bundled digits (``n`` each, <= 2,500).

    This is what a perfect generator would score with ``n`` samples: report it beside every model's FD.
    """
    from ganlib.data.mnist import mnist

    images, _ = mnist(size=size, split="all")
    n = len(images) // 2 if n is None else n
    if not 2 <= n <= len(images) // 2:
        raise ValueError(f"n must be between 2 and {len(images) // 2} (two disjoint halves), got {n}")
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return classifier_fd(images[perm[:n]], images[perm[n:2 * n]])


def class_histogram(images: Tensor) -> Tensor:
    """Fraction of images the classifier assigns to each digit, (10,) summing to 1."""
    counts = torch.bincount(predict(images), minlength=10).double()
    return counts / counts.sum()


def kl_to_uniform(histogram: Union[Tensor, np.ndarray]) -> float:
    """KL(p || uniform) = sum p log(p K) over the non-empty bins; 0 means all K classes equally often."""
    p = torch.as_tensor(histogram, dtype=torch.float64).flatten()
    if (p < 0).any() or not torch.isclose(p.sum(), torch.tensor(1.0, dtype=torch.float64)):
        raise ValueError("histogram must be non-negative and sum to 1 (use class_histogram)")
    nz = p[p > 0]
    return float((nz * torch.log(nz * len(p))).sum())


def conditional_accuracy(images: Tensor, labels: Tensor) -> float:
    """How often the classifier reads the digit a conditional generator was asked for, in [0, 1]."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; they must match one to one")
    return float((predict(images) == labels.cpu()).double().mean())


def stacked_labels(images: Tensor) -> Tensor:
    """Stacked MNIST label 100 r + 10 g + b of (N, 3, 28|32, 28|32) images, one classifier call per channel."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"stacked_labels expects (N, 3, H, W) Stacked MNIST images, got {tuple(images.shape)}")
    digits = [predict(images[:, c:c + 1]) for c in range(3)]
    return digits[0] * 100 + digits[1] * 10 + digits[2]


def stacked_mode_stats(images: Tensor) -> Dict[str, object]:
    """Modes covered (distinct triples) and KL(p_gen || uniform over 1,000) = sum p log(1000 p) (PacGAN's formula).

    Returns ``{"modes": int, "kl": float, "counts": (1000,) tensor}``.
    """
    counts = torch.bincount(stacked_labels(images), minlength=1000)
    return {"modes": int((counts > 0).sum()), "kl": kl_to_uniform(counts.double() / counts.sum()), "counts": counts}
