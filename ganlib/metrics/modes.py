"""Mode coverage on mixtures of Gaussians, exactly as VEEGAN and PacGAN count it.

A sample is *high quality* (HQ) when its standardised distance to the nearest centre,
sqrt(sum_d (x_d - mu_d)^2 / sigma^2), is strictly below 3 (a sample exactly at 3 sigma is not HQ) (PacGAN's ``MetricLogger``; VEEGAN: "within three
standard deviations"). A mode is *captured* when at least one HQ sample has it as nearest centre.
A perfect sampler scores every mode and P(chi_2 < 3) = 1 - exp(-4.5) = 98.89 % HQ in 2-D.

Reverse KL is KL(p_gen || p_data) between the histogram of HQ samples over modes and the uniform
mode weights -- PacGAN's Table 1 reports it without code, so this is our documented reading. When no
sample is HQ the histogram is empty and the reverse KL is ``inf`` (by design: nothing of the data is
reproduced), with 0 modes and HQ 0.
"""
from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor


def mode_stats(samples: Tensor, centers: Tensor, std: float, threshold: float = 3.0) -> Dict[str, object]:
    """Modes captured, HQ fraction, reverse KL and per-mode counts for ``samples`` (N, d).

    ``centers`` is (K, d); HQ means nearest standardised distance strictly below ``threshold``; reverse KL
    is ``inf`` when no sample is HQ.
    """
    samples = torch.as_tensor(samples).detach().double().cpu()
    centers = torch.as_tensor(centers).double().cpu()
    if centers.dim() != 2 or centers.shape[0] == 0:
        raise ValueError(f"centers must have shape (K, d) -- one row per mode, e.g. (8, 2) for the ring -- got "
                         f"{tuple(centers.shape)}" + ("; for 1-D data use centers[:, None]" if centers.dim() == 1 else ""))
    if not torch.isfinite(centers).all():
        raise ValueError("centers contain NaN or inf; every mode centre must be a finite point")
    if samples.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples must have shape (N, {centers.shape[1]}) to match the centres, "
                         f"got {tuple(samples.shape)}")
    if samples.shape[0] == 0:
        raise ValueError("no samples given; draw e.g. 2,500 from the generator first")
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or inf: the generator has diverged; retrain with a lower learning rate")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    dist = torch.cdist(samples, centers) / std
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist < threshold
    counts = torch.bincount(nearest[hq], minlength=centers.shape[0])
    k = centers.shape[0]
    if counts.sum() == 0:
        reverse_kl = math.inf
    else:
        p = counts.double() / counts.sum()
        nz = p > 0
        reverse_kl = float((p[nz] * torch.log(p[nz] * k)).sum())
    return {
        "modes": int((counts > 0).sum()),
        "hq": float(hq.double().mean()),
        "reverse_kl": reverse_kl,
        "counts": counts.tolist(),
    }
