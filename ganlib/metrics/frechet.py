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
    """Mean and covariance (float64) of features (N, d)."""
    f = torch.as_tensor(features).detach().double().cpu().flatten(1).numpy()
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf; check the generator's output before scoring it")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product: nudge both covariances, as pytorch-fid does
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (N_a, d) and (N_b, d)."""
    return frechet_distance_from_stats(*feature_stats(features_a), *feature_stats(features_b))
