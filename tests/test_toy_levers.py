"""The benchmark's levers on the 2-D toys: PacGAN packing of D and discriminator rejection sampling (DRS)."""
import math

import pytest
import torch

from ganlib.experiments.toy import ToyConfig, build, drs_acceptance, drs_sample, drs_score, finetune_discriminator
from ganlib.models import MLPDiscriminator


def test_pac_one_is_the_plain_discriminator():
    torch.manual_seed(0)
    plain = MLPDiscriminator(2, hidden=16, depth=2)
    torch.manual_seed(0)
    packed = MLPDiscriminator(2, hidden=16, depth=2, pac=1)
    x = torch.randn(12, 2)
    assert torch.equal(plain(x), packed(x))


def test_pac_scores_consecutive_samples_concatenated():
    D = MLPDiscriminator(2, hidden=16, depth=2, pac=3)
    assert D.net[0].in_features == 6  # PacGAN only widens D's input layer
    x = torch.randn(12, 2)
    packs = torch.cat([x[0::3], x[1::3], x[2::3]], dim=1)  # pack i = rows 3i, 3i+1, 3i+2 side by side
    assert D(x).shape == (4,)
    assert torch.allclose(D(x), D.net(packs)[:, 0])
    with pytest.raises(ValueError, match="packs"):
        D(torch.randn(10, 2))


def test_packed_toy_config_trains_and_checks_its_batch():
    trainer = build(ToyConfig(dataset="grid", pac=4, hidden=8, depth=1, batch_size=32))
    assert trainer.D.net[0].in_features == 8
    trainer.fit(3)
    assert trainer.step == 3
    with pytest.raises(ValueError, match="pac"):
        ToyConfig(pac=3, batch_size=256)
    with pytest.raises(ValueError, match="pac"):
        ToyConfig(pac=0)


def test_drs_acceptance_is_exp_of_the_logit_gap_at_gamma_zero():
    logits = torch.tensor([-5.0, -1.0, 0.0, 1.5, 2.0])
    # sigmoid(log a - log(1 - a)) = a with a = exp(D - D_M): textbook rejection sampling, p_d / (M p_g)
    assert torch.allclose(drs_acceptance(logits, 2.0), torch.exp(logits.double() - 2.0), atol=1e-5)
    # gamma shifts F down, so every acceptance falls
    assert (drs_acceptance(logits, 2.0, gamma=1.0) < drs_acceptance(logits, 2.0)).all()
    with pytest.raises(ValueError, match="max_logit"):
        drs_acceptance(logits, 1.0)


def test_drs_with_the_exact_density_ratio_recovers_the_data_mixture():
    # p_g: 0.8 N(-2, 0.5^2) + 0.2 N(2, 0.5^2); p_data: the same modes at 1/2 each. With D = log p_data/p_g
    # rejection sampling keeps samples from p_data, and keeps a fraction 1/M, M = sup p_data/p_g = 0.5/0.2.
    normal = torch.distributions.Normal

    def G(z):
        mode = torch.where(z[:, 1] < normal(0.0, 1.0).icdf(torch.tensor(0.2)), 2.0, -2.0)  # P(+2) = 0.2
        return (mode + 0.5 * z[:, 0])[:, None]

    def log_mix(x, w_plus):
        lp, lm = normal(2.0, 0.5).log_prob(x[:, 0]), normal(-2.0, 0.5).log_prob(x[:, 0])
        return torch.logaddexp(math.log(w_plus) + lp, math.log(1 - w_plus) + lm)

    D = lambda x: log_mix(x, 0.5) - log_mix(x, 0.2)  # noqa: E731
    x, rate = drs_sample(G, D, 8000, z_dim=2, seed=0)
    assert x.shape == (8000, 1)
    assert (x[:, 0] > 0).double().mean() == pytest.approx(0.5, abs=0.02)  # 3.5 s.e. of a fraction of 8,000
    assert rate == pytest.approx(1 / 2.5, abs=0.02)


def test_drs_that_keeps_too_few_draws_is_a_clear_error():
    # D scores the 0.13 % of draws beyond 3 sigma high and the rest hopelessly low: ~65 of 50,000 kept, not 5,000
    G = lambda z: z  # noqa: E731
    D = lambda x: torch.where(x[:, 0] > 3.0, 0.0, -50.0)  # noqa: E731
    with pytest.raises(RuntimeError, match="DRS kept"):
        drs_sample(G, D, 5000, z_dim=2, max_draws=50_000)


def test_finetuned_discriminator_separates_a_frozen_generator_and_leaves_d_alone():
    trainer = build(ToyConfig(dataset="ring", hidden=16, depth=2, ema_decay=0.9))
    with torch.no_grad():  # G_ema puts every sample at (3, 3), far from the unit ring
        trainer.G_ema.net[-1].weight.zero_()
        trainer.G_ema.net[-1].bias.fill_(3.0)
    before = [p.clone() for p in trainer.D.parameters()]
    D = finetune_discriminator(trainer, steps=150)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.D.parameters()))  # a copy was trained
    real = trainer.mixture.sample(200, torch.Generator().manual_seed(1))
    assert (D(real) > 0).all() and (D(torch.full((5, 2), 3.0)) < 0).all()
    # rejection sampling cannot move G's samples: all of them sit off the modes, so none is high quality
    stats = drs_score(trainer, n=100, finetune_steps=20)
    assert stats["hq"] == 0.0 and 0 < stats["acceptance"] <= 1


def test_finetuning_refuses_a_packed_discriminator():
    trainer = build(ToyConfig(pac=2, hidden=8, depth=1))
    with pytest.raises(ValueError, match="pac"):
        finetune_discriminator(trainer, steps=1)
