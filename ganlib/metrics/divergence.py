"""Divergences between densities tabulated on a grid (for the 1-D experiments of the early chapters)."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def js_divergence(p: Tensor, q: Tensor, dx: float) -> float:
    """Jensen-Shannon divergence (natural log, max log 2) between densities p, q sampled on a uniform grid."""
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    if p.shape != q.shape:
        raise ValueError(f"p and q must be tabulated on the same grid, got {tuple(p.shape)} and {tuple(q.shape)}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("densities must be non-negative")
    p, q = p / (p.sum() * dx), q / (q.sum() * dx)
    m = 0.5 * (p + q)

    def kl(a: Tensor, b: Tensor) -> Tensor:
        nz = a > 0
        return (a[nz] * torch.log(a[nz] / b[nz])).sum() * dx

    value = float(0.5 * kl(p, m) + 0.5 * kl(q, m))
    return min(max(value, 0.0), math.log(2))
