"""Every loss against a hand-derived value or an analytic gradient."""
import math

import pytest
import torch
from torch import nn

from ganlib import losses


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_discriminator_bce_by_hand():
    loss = losses.discriminator_bce(torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 3.0]))
    expected = (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(3.0)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_discriminator_bce_with_soft_targets_by_hand():
    real, fake = torch.tensor([0.5]), torch.tensor([-0.5])
    t_real, t_fake = 0.9, 0.1
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(t_real * math.log(s(0.5)) + (1 - t_real) * math.log(1 - s(0.5))) \
               - (t_fake * math.log(s(-0.5)) + (1 - t_fake) * math.log(1 - s(-0.5)))
    assert losses.discriminator_bce(real, fake, t_real, t_fake).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses_values():
    logit = torch.tensor([0.3])
    p = 1 / (1 + math.exp(-0.3))
    assert losses.generator_minimax(logit).item() == pytest.approx(math.log(1 - p), rel=1e-6)
    assert losses.generator_nonsaturating(logit).item() == pytest.approx(-math.log(p), rel=1e-6)


def test_minimax_gradient_vanishes_where_nonsaturating_does_not():
    # A confident D (logit -10 on a fake): d/dl log(1 - sigmoid(l)) = -sigmoid(l) ~ -4.5e-5,
    # d/dl -log sigmoid(l) = -(1 - sigmoid(l)) ~ -1.
    for loss_fn, expected in ((losses.generator_minimax, -1 / (1 + math.exp(10))),
                              (losses.generator_nonsaturating, -1 / (1 + math.exp(-10)))):
        logit = torch.tensor([-10.0], requires_grad=True)
        loss_fn(logit).backward()
        assert logit.grad.item() == pytest.approx(expected, rel=1e-5)


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert losses.critic_wasserstein(real, fake).item() == pytest.approx(0.0 - 2.0)
    assert losses.generator_wasserstein(fake).item() == pytest.approx(0.0)


@pytest.mark.parametrize("coding, d_expected, g_expected", [
    ("paper", 0.5 * 0.25 + 0.5 * 1.44, 0.5 * 0.04),     # a=-1, b=1, c=0
    ("official", 0.5 * 0.25 + 0.5 * 0.04, 0.5 * 0.64),  # a=0, b=1, c=1
    ((0.0, 1.0, 0.5), 0.5 * 0.25 + 0.5 * 0.04, 0.5 * 0.09),
])
def test_least_squares_by_hand(coding, d_expected, g_expected):
    real, fake = torch.tensor([0.5]), torch.tensor([0.2])
    assert losses.discriminator_least_squares(real, fake, coding).item() == pytest.approx(d_expected)
    assert losses.generator_least_squares(fake, coding).item() == pytest.approx(g_expected)
    with pytest.raises(ValueError, match="paper"):
        losses.generator_least_squares(fake, "pearson")


class Linear(nn.Module):
    """D(x) = w . flatten(x) + b."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(int(torch.tensor(shape).prod())))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("shape", [(2,), (3, 4, 4), (1, 8, 8)])
def test_gradient_penalty_of_linear_critic_is_exact(batch, shape):
    torch.manual_seed(0)
    critic = Linear(shape)
    real, fake = torch.randn(batch, *shape), torch.randn(batch, *shape)
    gp = losses.gradient_penalty(critic, real, fake)
    expected = (critic.w.norm() - 1) ** 2
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    # create_graph=True: the penalty trains the critic, with gradient 2(|w| - 1) w / |w|
    gp.backward()
    w = critic.w.detach()
    assert torch.allclose(critic.w.grad, 2 * (w.norm() - 1) * w / w.norm(), rtol=1e-4, atol=1e-6)


def test_gradient_penalty_draws_one_epsilon_per_sample():
    # f(x) = |x|^2 / 2 has gradient x. With real = 0 and fake = 1 in d dims, x_hat = eps * 1, so each
    # sample's term is (eps sqrt(d) - 1)^2 with E = d/3 - sqrt(d) + 1. A per-sample eps averages over the
    # batch (tiny spread between calls); one eps for the whole batch would swing from 1 to (sqrt(d)-1)^2.
    d, n = 16, 4000
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)  # noqa: E731
    values = torch.tensor([losses.gradient_penalty(critic, torch.zeros(n, 1, 4, 4), torch.ones(n, 1, 4, 4)).item()
                           for _ in range(10)])
    assert values.mean().item() == pytest.approx(d / 3 - 4 + 1, rel=0.05)
    assert values.std().item() < 0.05 * values.mean().item()


def test_gradient_penalty_shape_mismatch_is_clear():
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(Linear((2,)), torch.zeros(3, 2), torch.zeros(4, 2))


def test_r1_of_linear_critic_is_squared_weight_norm():
    torch.manual_seed(1)
    critic = Linear((3, 2, 2))
    r1 = losses.r1_penalty(critic, torch.randn(6, 3, 2, 2))
    assert r1.item() == pytest.approx(critic.w.norm().pow(2).item(), rel=1e-5)


def test_r1_of_linear_discriminator_is_half_gamma_norm_w_squared(device):
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4, device=device)

    def D(x):
        return x.flatten(1) @ w + 0.7

    real = torch.randn(5, 3, 4, 4, device=device)
    for gamma in (0.5, 10.0):
        penalty = losses.r1_regularizer(gamma)(D, real, torch.randn_like(real), None)
        torch.testing.assert_close(penalty, gamma / 2 * w.pow(2).sum())


def test_r1_rejects_negative_gamma():
    with pytest.raises(ValueError, match="gamma"):
        losses.r1_regularizer(-1.0)


def test_drift_penalty():
    assert losses.drift_penalty(torch.tensor([1.0, -3.0])).item() == pytest.approx(5.0)


def test_clip_weights_bounds_every_parameter():
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    losses.clip_weights_(net, 0.01)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
    with pytest.raises(ValueError):
        losses.clip_weights_(net, 0.0)


def test_soft_noisy_labels_ranges_and_flips():
    gen = torch.Generator().manual_seed(0)
    real = losses.soft_noisy_labels(10000, real=True, generator=gen)
    fake = losses.soft_noisy_labels(10000, real=False, generator=gen)
    assert real.min() >= 0.7 and real.max() <= 1.0 and fake.min() >= 0 and fake.max() <= 0.3
    # U[0.7, 1.2] clipped to 1: about 40 % of real labels sit at exactly 1
    assert (real == 1).float().mean().item() == pytest.approx(0.4, abs=0.03)
    flipped = losses.soft_noisy_labels(10000, real=True, flip_prob=0.1, generator=gen)
    assert (flipped <= 0.3).float().mean().item() == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ValueError):
        losses.soft_noisy_labels(4, real=True, flip_prob=2)


def test_wrong_shapes_are_reported():
    with pytest.raises(ValueError, match="one score per sample"):
        losses.discriminator_bce(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="one label per sample"):
        losses.discriminator_bce(torch.zeros(4), torch.zeros(4), real_target=torch.ones(3))
    with pytest.raises(TypeError):
        losses.generator_nonsaturating([0.1, 0.2])
    assert losses.generator_nonsaturating(torch.zeros(4, 1)).item() == pytest.approx(math.log(2))


def test_bce_targets_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.discriminator_bce(torch.zeros(3), torch.zeros(3), real_target=torch.tensor([0.9, 1.1, 1.0]))
