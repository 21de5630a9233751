"""Exact Wasserstein-1 distance between two equal-size point clouds, by optimal assignment.

For uniform weights on n points each, an optimal transport plan can be chosen as a permutation
(Birkhoff-von Neumann), so W1 = min over permutations of the mean Euclidean cost -- solved exactly
by scipy's Hungarian-algorithm ``linear_sum_assignment``.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def exact_w1(x: Tensor, y: Tensor) -> float:
    """W1 between the empirical distributions of ``x`` and ``y``, each (n, d) (or (n,) for 1-D).

    Distances are computed in float64 as sqrt(sum (x - y)^2) directly, not through the faster
    ||x||^2 - 2 x.y + ||y||^2 expansion, which cancels catastrophically for points far from the origin.
    """
    x = torch.as_tensor(x).detach().double().cpu()
    y = torch.as_tensor(y).detach().double().cpu()
    x = x[:, None] if x.dim() == 1 else x.flatten(1)
    y = y[:, None] if y.dim() == 1 else y.flatten(1)
    if x.shape != y.shape:
        raise ValueError(f"exact_w1 needs two clouds of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}; "
                         "subsample the larger one")
    if len(x) == 0:
        raise ValueError("exact_w1 needs at least one point in each cloud, got empty ones")
    if len(x) > 4000:
        raise ValueError(f"{len(x)} points is too many for an exact assignment (O(n^3)); use <= 4000")
    for name, cloud in (("x", x), ("y", y)):
        bad = ~torch.isfinite(cloud).all(dim=1)
        if bad.any():
            raise ValueError(f"exact_w1: {name} has {int(bad.sum())} point(s) with NaN or inf coordinates (first at "
                             f"row {int(bad.nonzero()[0])}); W1 is undefined -- drop them, or check the generator")
    cost = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(np.mean(cost[rows, cols]))
