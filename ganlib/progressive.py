"""What a growing network is made of (Karras et al. 2018, "PGGAN", Sec. 2), shared by PGGAN and StyleGAN.

* ``StageMixin``: the ``level`` (0 -> 4x4, 1 -> 8x8, ...) and fade-in ``alpha`` of a network, kept as buffers
  so they travel with ``state_dict``, EMA copies and checkpoints. **alpha = 0 is the old (coarser) path
  only, alpha = 1 the new one only** (the official TF code's ``lod`` fraction).
  ``OptionalStageMixin`` is the same for a network that grows only when built with ``progressive=True``.
* images in and out are always full size, as in the official code: G up-samples its current output by
  nearest neighbour (``to_full_size``), D average-pools its input down to the current size (``pool_to``),
  and the reals are pooled the same way and blended between two resolutions (``fade_reals``).

Pure tensor code: what drives the stage during training (the schedule, the faded reals, the trainer) lives in
``ganlib.experiments.progressive``.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from ganlib.layers import downsample2x, upsample2x


class StageMixin:
    """``level`` and ``alpha`` as buffers, so they travel with state_dict, EMA copies and checkpoints.

    Mix it into an ``nn.Module`` that sets ``n_levels`` and calls ``_init_stage()`` in its ``__init__``.
    """

    n_levels: int

    def _init_stage(self) -> None:
        self.register_buffer("level", torch.tensor(self.n_levels - 1, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_stage(self, level: int, alpha: float = 1.0) -> None:
        """Put resolution 4 * 2**level on top, blended with the one below by ``alpha`` (0 old .. 1 new)."""
        if not isinstance(level, int) or not 0 <= level < self.n_levels:
            raise ValueError(f"level must be an int in [0, {self.n_levels - 1}] (4x4 .. "
                             f"{4 * 2**(self.n_levels - 1)}), got {level!r}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] (0 = old resolution, 1 = new), got {alpha}")
        self.level.fill_(level)
        self.alpha.fill_(float(alpha))

    @property
    def stage(self) -> Tuple[int, float]:
        """(level, alpha)."""
        return int(self.level), float(self.alpha)

    @property
    def current_resolution(self) -> int:
        return 4 * 2 ** int(self.level)


class OptionalStageMixin(StageMixin):
    """A ``StageMixin`` only for a network built with ``progressive=True`` (StyleGAN's option): a fixed-resolution
    one has no stage buffers, is always at its top level with alpha 1, and refuses to be staged.

    Mix it into an ``nn.Module`` that calls ``_init_growth(progressive, n_levels)`` in its ``__init__``.
    """

    progressive: bool

    def _init_growth(self, progressive: bool, n_levels: int) -> None:
        self.progressive, self.n_levels = progressive, n_levels
        if progressive:
            self._init_stage()

    def set_stage(self, level: int, alpha: float = 1.0) -> None:
        if not self.progressive:
            raise ValueError(f"{type(self).__name__} was built without progressive=True, so it cannot be staged; "
                             "build it with progressive=True to grow it with a ProgressiveSchedule")
        super().set_stage(level, alpha)

    @property
    def stage(self) -> Tuple[int, float]:
        """(level, alpha); a fixed-resolution network is always at its top level with alpha 1."""
        return super().stage if self.progressive else (self.n_levels - 1, 1.0)

    def _end_at(self, level: int, top: nn.Module, lower: str) -> nn.Module:
        """The toRGB (G) or fromRGB (D) of ``level``: ``top`` at the top level, the only one a fixed-resolution
        network builds; below it, entry ``level`` of the ModuleList named ``lower``, built with ``progressive=True``."""
        return top if level == self.n_levels - 1 else getattr(self, lower)[level]


def to_full_size(x: Tensor, resolution: int) -> Tensor:
    """Nearest-neighbour up-sampling by powers of two until the side is ``resolution`` (pixels copied, exact)."""
    while x.shape[-1] < resolution:
        x = upsample2x(x)
    return x


def pool_to(x: Tensor, resolution: int, target: int) -> Tensor:
    """Average-pool 2x at a time from ``resolution`` down to ``target`` (the same ops every time, so exact)."""
    side = resolution
    while side > target:
        x, side = downsample2x(x), side // 2
    return x


def fade_reals(x: Tensor, level: int, alpha: float) -> Tensor:
    """The reals D sees at ``level`` (Sec. 2, "during a resolution transition, we interpolate between two
    resolutions of the real images"): pooled to 4 * 2**level, blended with the next-coarser version by
    ``alpha`` (0 coarse .. 1 fine), then up-sampled back to full size by nearest neighbour."""
    full = x.shape[-1]
    xr = pool_to(x, full, 4 * 2**level)
    if level > 0 and alpha < 1.0:
        xr = torch.lerp(upsample2x(downsample2x(xr)), xr, alpha)
    return to_full_size(xr, full)
