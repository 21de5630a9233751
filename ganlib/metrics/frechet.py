"""Fréchet distance between two sets of features (the formula behind FID, Heusel et al. 2017, eq. 6).

d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2}); the matrix square root is scipy's.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from scipy import linalg
from torch import Tensor


def feature_stats(features: Tensor) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of features (N, d); the covariance is the unbiased one, divided by N - 1
    (``np.cov``'s default, as in pytorch-fid and the TTUR reference code)."""
    f = torch.as_tensor(features).detach().double().cpu().flatten(1).numpy()
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf; check the generator's output before scoring it")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    The means must be (d,) and the covariances (d, d), finite, symmetric and positive semi-definite
    (up to rounding), else ValueError: a silent 0 or NaN would read as a perfect or a missing score.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: mu1 {mu1.shape} vs mu2 {mu2.shape}; both must be (d,)")
    d = mu1.shape[0]
    for name, value in (("mu1", mu1), ("mu2", mu2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf; check the features before scoring them")
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        _check_covariance(sigma, name, d)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product: nudge both covariances, as pytorch-fid does
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _check_covariance(sigma: np.ndarray, name: str, d: int) -> None:
    if sigma.shape != (d, d):
        raise ValueError(f"{name} has shape {sigma.shape} but the means have dimension {d}: it must be ({d}, {d})")
    if not np.isfinite(sigma).all():
        raise ValueError(f"{name} contains NaN or inf; check the features before scoring them")
    scale = max(1.0, float(np.abs(sigma).max()))
    if not np.allclose(sigma, sigma.T, rtol=1e-6, atol=1e-9 * scale):
        raise ValueError(f"{name} is not symmetric, so it is not a covariance matrix")
    smallest = float(np.linalg.eigvalsh(sigma).min())
    if smallest < -1e-6 * scale:
        raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue {smallest:.3g}), so it is not "
                         "a covariance matrix; compute it with feature_stats")


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (N_a, d) and (N_b, d)."""
    return frechet_distance_from_stats(*feature_stats(features_a), *feature_stats(features_b))
