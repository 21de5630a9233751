"""Opt-in, online datasets through torchvision, and any folder of images.

Nothing here runs unless a user asks for it. Downloads go to ``data/downloads/``. Offline, the call
fails within seconds with a message that names the bundled alternatives.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import Tensor

from ganlib.data.mnist import data_dir

DOWNLOADABLE = ("mnist", "fashion_mnist", "cifar10")
BUNDLED_HINT = ("bundled, offline alternatives: ganlib.data.mnist() (5,000 real MNIST digits), "
                "ganlib.data.shapes() (procedural RGB shapes) and ganlib.data.toy('ring'|'grid'|...)")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _online(host: str = "pypi.org", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def download(name: str, train: bool = True, root: Optional[Path] = None) -> Tuple[Tensor, Tensor]:
    """Download (once) and load a full torchvision dataset as ``(images in [-1, 1], labels)``.

    ``name`` is one of ``mnist``, ``fashion_mnist``, ``cifar10``. Needs internet the first time.
    """
    import torchvision

    classes = {"mnist": torchvision.datasets.MNIST, "fashion_mnist": torchvision.datasets.FashionMNIST,
               "cifar10": torchvision.datasets.CIFAR10}
    if name not in classes:
        raise ValueError(f"unknown downloadable dataset {name!r}; choose one of {', '.join(DOWNLOADABLE)}. "
                         + BUNDLED_HINT)
    root = Path(root) if root else data_dir() / "downloads"
    try:
        dataset = classes[name](str(root), train=train, download=False)
    except RuntimeError:  # not on disk yet
        host = "ossci-datasets.s3.amazonaws.com" if "mnist" in name else "www.cs.toronto.edu"
        if not _online(host):
            raise ConnectionError(
                f"{name} is not in {root} and this machine cannot reach {host} to download it. "
                f"Connect to the internet and retry, copy the files into {root}, or use the "
                + BUNDLED_HINT
            ) from None
        dataset = classes[name](str(root), train=train, download=True)
    data = torch.as_tensor(dataset.data)
    images = data.float().div(127.5).sub(1.0)
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(dataset.targets, dtype=torch.int64)


def image_folder(path: str | Path, size: int = 64, channels: int = 3) -> Tensor:
    """Load every image under ``path`` (recursively), centre-cropped and resized to size x size, in [-1, 1]."""
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; pass a directory of .png/.jpg files")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}; "
                         "check the path, or use the " + BUNDLED_HINT)
    mode = "L" if channels == 1 else "RGB"
    out = torch.empty(len(files), channels, size, size)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                img = img.convert(mode)
                side = min(img.size)
                left, top = (img.width - side) // 2, (img.height - side) // 2
                img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
                pixels = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot read image {file}: {err}; delete or replace that file") from err
        out[i] = pixels.view(size, size, channels).permute(2, 0, 1).float().div(127.5).sub(1.0)
    return out
