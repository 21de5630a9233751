"""WGAN, WGAN-GP and LSGAN as used in chapters 02-04: clipping, critic independence, gradient claims."""
import math

import pytest
import torch
import torch.nn.functional as F

from ganlib import losses
from ganlib.experiments.toy import LinearLrDecay, ToyConfig, build, published_defaults, train_toy
from ganlib.models.toy import MLPDiscriminator


def _max_abs_param(net):
    return max(float(p.detach().abs().max()) for p in net.parameters())


def test_weight_clipping_keeps_every_critic_parameter_in_box():
    # a large learning rate would push weights far past c within a few steps if nothing clamped them
    cfg = ToyConfig(loss="wgan", optimizer="rmsprop", lr_g=1e-2, lr_d=1e-2, n_critic=3, clip=0.01, steps=5,
                    hidden=16, depth=2, batch_size=32)
    trainer = build(cfg)
    trainer.fit(cfg.steps)
    assert _max_abs_param(trainer.D) <= 0.01 + 1e-12
    n_at_bound = sum(int((p.detach().abs() > 0.0099).sum()) for p in trainer.D.parameters())
    assert n_at_bound > 0  # the box was actually hit, so the clamp did work


def test_same_run_without_clipping_leaves_the_box():
    # control for the test above: identical settings with the WGAN-GP loss (no clip hook) exceed c
    cfg = ToyConfig(loss="wgan_gp", optimizer="rmsprop", lr_g=1e-2, lr_d=1e-2, n_critic=3, steps=5, hidden=16,
                    depth=2, batch_size=32)
    trainer = build(cfg)
    trainer.fit(cfg.steps)
    assert _max_abs_param(trainer.D) > 0.05


def _outputs_and_grads(critic, x):
    x = x.clone().requires_grad_(True)
    y = critic(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


@pytest.mark.parametrize("batchnorm", [False, True])
def test_gp_critic_independence(batchnorm):
    torch.manual_seed(0)
    critic = MLPDiscriminator(2, 32, 2, "leaky_relu", batchnorm=batchnorm).train()
    x = torch.randn(16, 2)
    x2 = x.clone()
    x2[5] += torch.tensor([2.0, -1.0])  # change one sample only
    y1, g1 = _outputs_and_grads(critic, x)
    y2, g2 = _outputs_and_grads(critic, x2)
    others = torch.arange(16) != 5
    d_out = float((y1[others] - y2[others]).abs().max())
    d_grad = float((g1[others] - g2[others]).abs().max())
    if batchnorm:  # batch statistics couple the samples: output and gradient of sample i move
        assert d_out > 1e-3 and d_grad > 1e-4
    else:
        assert d_out == 0.0 and d_grad == 0.0


def test_gradient_penalty_of_independent_critic_is_mean_of_per_sample_penalties():
    # real == fake makes x_hat = real for any eps, so the batch penalty must decompose exactly
    torch.manual_seed(1)
    critic = MLPDiscriminator(2, 32, 2, "tanh").double()
    x = torch.randn(8, 2, dtype=torch.float64)
    batch = losses.gradient_penalty(critic, x, x)
    singles = torch.stack([losses.gradient_penalty(critic, x[i:i + 1], x[i:i + 1]) for i in range(8)])
    assert torch.allclose(batch, singles.mean(), atol=1e-12)
    # and each per-sample norm agrees with central finite differences
    h = 1e-6
    for i in range(3):
        fd = torch.stack([(critic(x[i:i + 1] + h * e) - critic(x[i:i + 1] - h * e))[0] / (2 * h)
                          for e in torch.eye(2, dtype=torch.float64)])
        assert torch.allclose((fd.norm() - 1) ** 2, singles[i], atol=1e-7)


@pytest.mark.parametrize("s", [2.0, 4.0, 6.0])
def test_lsgan_gradient_on_the_real_side_matches_analytic_derivative(s):
    # chapter 04's claim at a fake already scored "real": d/ds of the per-sample generator loss
    def per_sample_grad(fn):
        x = torch.tensor([s], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(x), x)
        return float(g)

    ls_official = per_sample_grad(lambda x: losses.generator_least_squares(x, "official"))
    ls_paper = per_sample_grad(lambda x: losses.generator_least_squares(x, "paper"))
    ns = per_sample_grad(losses.generator_nonsaturating)
    assert ls_official == pytest.approx(s - 1.0, abs=1e-12)   # c = 1
    assert ls_paper == pytest.approx(s - 0.0, abs=1e-12)      # c = 0
    assert ns == pytest.approx(-1.0 / (1.0 + math.exp(s)), rel=1e-9)  # -sigmoid(-s)
    # finite-difference check of the NS value, independent of autograd
    h = 1e-5
    fd = (F.softplus(torch.tensor(-(s + h), dtype=torch.float64)) - F.softplus(torch.tensor(-(s - h), dtype=torch.float64))) / (2 * h)
    assert ns == pytest.approx(float(fd), rel=1e-6)
    assert abs(ls_official) > 5 * abs(ns)  # the vanishing-gradient argument at these points


def test_published_defaults_follow_the_papers():
    wgan = published_defaults("wgan")
    assert (wgan.optimizer, wgan.lr_d, wgan.lr_g, wgan.clip, wgan.n_critic) == ("rmsprop", 5e-5, 5e-5, 0.01, 5)
    gp = published_defaults("wgan_gp")
    assert (gp.lr_d, gp.betas, gp.n_critic) == (1e-4, (0.5, 0.9), 5)
    with pytest.raises(ValueError, match="unknown loss"):
        published_defaults("hinge")


def test_one_set_of_loss_names_and_one_table_the_playground_reads():
    from ganlib.experiments.toy import LOSS_NAMES, LOSSES, PUBLISHED, playground_preset
    assert set(PUBLISHED) == set(LOSS_NAMES) == set(LOSSES)
    assert published_defaults("ns").lr_g == 2e-4  # DCGAN's Adam
    # the playground's presets as it always showed them: the WGANs' papers, the course's 1e-3 for the others
    assert {k: playground_preset(k) for k in LOSSES} == {
        "ns": {"lr_g": 1e-3, "lr_d": 1e-3, "n_critic": 1}, "minimax": {"lr_g": 1e-3, "lr_d": 1e-3, "n_critic": 1},
        "wgan": {"lr_g": 5e-5, "lr_d": 5e-5, "n_critic": 5}, "wgan_gp": {"lr_g": 1e-4, "lr_d": 1e-4, "n_critic": 5},
        "lsgan": {"lr_g": 1e-3, "lr_d": 1e-3, "n_critic": 1}}


def test_wgan_warmup_schedule_runs_100_critic_steps_early():
    cfg = published_defaults("wgan", steps=2, warmup_critic=True, hidden=8, depth=1, batch_size=8)
    trainer = build(cfg)
    trainer.fit(2)
    assert trainer.d_steps == 200


def test_linear_lr_decay_hits_one_percent_at_the_end():
    cfg = ToyConfig(steps=10, lr_decay=0.5, lr_g=1e-3, lr_d=2e-3, hidden=8, depth=1, batch_size=8)
    trainer = build(cfg)
    seen = []

    class Spy(LinearLrDecay.__mro__[1]):  # a plain Hook
        def on_step_start(self, tr, step):
            seen.append((tr.g_opt.param_groups[0]["lr"], tr.d_opt.param_groups[0]["lr"]))

    trainer.hooks.append(Spy())
    trainer.fit(10)
    assert seen[0] == pytest.approx((1e-3, 2e-3))
    assert seen[5] == pytest.approx((1e-3, 2e-3))                      # decay starts at step 5
    assert seen[-1] == pytest.approx((1e-3 * (1 - 0.99 * 4 / 5), 2e-3 * (1 - 0.99 * 4 / 5)))


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="unknown loss"):
        ToyConfig(loss="hinge")
    with pytest.raises(ValueError, match="n_critic"):
        ToyConfig(n_critic=0)
    with pytest.raises(ValueError, match="learning rates"):
        ToyConfig(lr_g=-1.0)


def test_lsgan_paper_coding_trains_without_error_and_scores():
    r = train_toy(ToyConfig(loss="lsgan", coding="paper", steps=3, hidden=8, depth=1, batch_size=16))
    assert set(r.stats) == {"modes", "hq", "reverse_kl"} and 0 <= r.stats["hq"] <= 1
