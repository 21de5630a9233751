"""Where the code runs and how big it runs: the device, the seeds, and the GANLIB_SCALE knob.

Everything that depends on the machine is decided here, once, so that notebooks and tests
never guess. Two environment variables steer it:

* ``GANLIB_DEVICE`` -- ``cpu``, ``cuda``, ``cuda:1``, ``mps``; unset means cuda > mps > cpu.
* ``GANLIB_SCALE``  -- ``smoke`` (CI: seconds), ``small`` (CPU default: minutes, results already
  recognisable) or ``full`` (GPU default: paper-like results).
"""
from __future__ import annotations

import os
import random
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, TypeVar

import numpy as np
import torch

SCALES = ("smoke", "small", "full")
T = TypeVar("T")


def device() -> torch.device:
    """The one device every notebook and model uses: ``GANLIB_DEVICE`` if set, else cuda > mps > cpu."""
    requested = os.environ.get("GANLIB_DEVICE", "").strip()
    if requested:
        try:
            dev = torch.device(requested)
        except RuntimeError as err:
            raise ValueError(
                f"GANLIB_DEVICE={requested!r} is not a device name torch understands; "
                "use 'cpu', 'cuda', 'cuda:0' or 'mps', or unset it to pick automatically."
            ) from err
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"GANLIB_DEVICE={requested!r} asks for CUDA but torch sees no CUDA device; "
                "unset GANLIB_DEVICE or set it to 'cpu'."
            )
        if dev.type == "mps" and not _mps_available():
            raise ValueError(f"GANLIB_DEVICE={requested!r} asks for MPS, which is not available here; use 'cpu'.")
        if dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"GANLIB_DEVICE={requested!r}: ganlib supports cpu, cuda and mps only.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def scale() -> str:
    """The run size: ``GANLIB_SCALE`` if set, else ``full`` on CUDA and ``small`` elsewhere."""
    value = os.environ.get("GANLIB_SCALE", "").strip().lower()
    if not value:
        return "full" if device().type == "cuda" else "small"
    if value not in SCALES:
        raise ValueError(
            f"GANLIB_SCALE={value!r} is not a scale; choose one of {', '.join(SCALES)} "
            "(smoke = seconds for CI, small = minutes on a laptop CPU, full = paper-like on a GPU)."
        )
    return value


def by_scale(smoke: T, small: T, full: T, *, current: Optional[str] = None) -> T:
    """Pick the value for the current scale, e.g. ``steps = by_scale(smoke=50, small=3000, full=20000)``."""
    table: Dict[str, Any] = {"smoke": smoke, "small": small, "full": full}
    key = scale() if current is None else current
    if key not in table:
        raise ValueError(f"unknown scale {key!r}; choose one of {', '.join(SCALES)}")
    return table[key]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a CPU ``torch.Generator`` seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def describe() -> Dict[str, str]:
    """Versions, device and scale as a dict -- the environment check at the top of every notebook."""
    dev = device()
    info = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "torch": torch.__version__,
        "device": str(dev),
        "scale": scale(),
        "threads": str(torch.get_num_threads()),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    return info


@contextmanager
def eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Run a block with ``modules`` in eval mode (BatchNorm on running statistics, dropout off), then give
    each module back the train/eval mode it had before, also when the block raises."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
