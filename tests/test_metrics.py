import math

import numpy as np
import pytest
import torch

from ganlib import data, metrics


@pytest.mark.parametrize("name, modes", [("ring", 8), ("grid", 25), ("grid_3x3", 9), ("ring_5", 5)])
def test_exact_mixture_samples_score_all_modes_and_98_9_percent(name, modes):
    mix = data.toy(name)
    hq = []
    for seed in range(8):
        stats = metrics.mode_stats(mix.sample(2500, generator=torch.Generator().manual_seed(seed)), mix.centers, mix.std)
        assert stats["modes"] == modes
        assert stats["reverse_kl"] < 0.02
        hq.append(stats["hq"])
    # P(chi_2 < 3) = 1 - exp(-9/2); the mean over 8 x 2,500 samples has s.e. ~0.0007
    assert np.mean(hq) == pytest.approx(1 - math.exp(-4.5), abs=0.003)


def test_collapsed_sampler_scores_one_mode_and_log_k():
    mix = data.toy("grid")
    collapsed = mix.centers[7] + 0.01 * torch.randn(2500, 2)
    stats = metrics.mode_stats(collapsed, mix.centers, mix.std)
    assert stats["modes"] == 1 and stats["hq"] == 1.0
    assert stats["reverse_kl"] == pytest.approx(math.log(25))


def test_far_away_samples_are_low_quality():
    mix = data.toy("ring")
    stats = metrics.mode_stats(torch.full((100, 2), 5.0), mix.centers, mix.std)
    assert stats["modes"] == 0 and stats["hq"] == 0.0 and math.isinf(stats["reverse_kl"])


def test_mode_stats_bad_input():
    mix = data.toy("ring")
    with pytest.raises(ValueError, match="shape"):
        metrics.mode_stats(torch.zeros(10, 3), mix.centers, mix.std)
    with pytest.raises(ValueError, match="NaN"):
        metrics.mode_stats(torch.full((10, 2), float("nan")), mix.centers, mix.std)


def test_w1_of_shifted_cloud_is_the_shift():
    torch.manual_seed(0)
    x = torch.randn(300, 3)
    shift = torch.tensor([0.3, -1.2, 0.4])
    assert metrics.exact_w1(x, x + shift) == pytest.approx(shift.norm().item(), rel=1e-6)


def test_w1_in_one_dimension_matches_sorted_matching():
    torch.manual_seed(1)
    x, y = torch.randn(500), torch.rand(500) * 3
    expected = (x.sort().values - y.sort().values).abs().mean().item()
    assert metrics.exact_w1(x, y) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        metrics.exact_w1(x, y[:10])


def test_frechet_of_a_set_with_itself_is_zero():
    feats = torch.randn(500, 8)
    assert abs(metrics.frechet_distance(feats, feats)) < 1e-6


def test_frechet_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    got = metrics.frechet_distance_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_from_samples_converges_to_closed_form():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 2, generator=gen)
    b = 2 * torch.randn(20000, 2, generator=gen) + 1
    # (mu diff)^2 = 2, (sigma diff)^2 summed = 2 * (2 - 1)^2 = 2
    assert metrics.frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)


def test_js_divergence_limits():
    xs = torch.linspace(-10, 10, 4001)
    dx = float(xs[1] - xs[0])
    p = data.gaussian_1d(-5, 0.5).density(xs)
    q = data.gaussian_1d(5, 0.5).density(xs)
    assert metrics.js_divergence(p, q, dx) == pytest.approx(math.log(2), abs=1e-6)
    assert metrics.js_divergence(p, p, dx) == pytest.approx(0.0, abs=1e-9)
    # Two equal-width boxes overlapping by half: M = 1/2 on the overlap; JS = 1/2 log 2 by hand.
    box_p = ((xs >= 0) & (xs < 2)).double()
    box_q = ((xs >= 1) & (xs < 3)).double()
    assert metrics.js_divergence(box_p, box_q, dx) == pytest.approx(0.5 * math.log(2), abs=2e-3)
