"""Opt-in, online datasets through torchvision, and any folder of images.

Nothing here runs unless a user asks for it. Downloads go to ``data/downloads/``. Offline, the call
fails within seconds with a message that names the bundled alternatives.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Optional, Tuple

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
    if root.is_file():
        raise NotADirectoryError(f"root {root} is a file, not a folder; pass the folder to download {name} into "
                                 f"(or leave root out for {data_dir() / 'downloads'})")
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
    """Load every image under ``path`` (recursively), centre-cropped and resized to size x size, in [-1, 1].

    8-bit images are scaled by 255; 16-bit grayscale PNGs (PIL modes ``I;16*``, or ``I`` with values up to
    65535) by 65535, so their full range maps to [-1, 1] instead of saturating.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    _check_size(size)
    folder = Path(path)
    if folder.is_file():
        raise NotADirectoryError(f"image_folder needs a folder, but {folder} is a file; pass the folder that holds "
                                 f"the images (e.g. {folder.parent})")
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; pass a directory of .png/.jpg files")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}; "
                         "check the path, or use the " + BUNDLED_HINT)
    out = torch.empty(len(files), channels, size, size)
    for i, file in enumerate(files):
        out[i] = _load_image(file, size, channels, Image)
    return out


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (the side of the square images, in pixels), got {size!r}")


def _load_image(file: Path, size: int, channels: int, Image: Any) -> Tensor:
    """One image as (channels, size, size) in [-1, 1], with errors that name the file."""
    try:
        with Image.open(file) as img:
            img.load()
            return _to_tensor(img, size, channels, Image)
    except Image.DecompressionBombError as err:
        raise ValueError(f"image {file} is too large to decode safely ({err}); it may be a decompression bomb: "
                         "delete it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from err
    except (Image.UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read image {file}: {err}; delete or replace that file") from err


def _to_tensor(img: Any, size: int, channels: int, Image: Any) -> Tensor:
    """Crop to the centre square, resize, and scale to [-1, 1] by the image's own bit depth."""
    import numpy as np

    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    box = (left, top, left + side, top + side)
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit grayscale: convert("L") would clip every value above 255 to white, so scale it here
        pixels = np.asarray(img, dtype=np.float64)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ValueError(f"image {img.filename} has 32-bit integer pixels ({pixels.min():.0f} to {pixels.max():.0f}); "
                             "only 8- and 16-bit images are supported: convert it to 8 or 16 bits")
        grey = Image.fromarray((pixels / 65535.0).astype(np.float32), mode="F")
        grey = grey.crop(box).resize((size, size), Image.BILINEAR)
        unit = torch.from_numpy(np.array(grey, dtype=np.float32))[None]
        return (unit.expand(channels, -1, -1) * 2.0 - 1.0).clamp(-1.0, 1.0)
    img = img.convert("L" if channels == 1 else "RGB").crop(box).resize((size, size), Image.BILINEAR)
    pixels = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return pixels.view(size, size, channels).permute(2, 0, 1).float().div(127.5).sub(1.0)
