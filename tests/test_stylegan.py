"""StyleGAN pieces checked against their definitions (Karras et al. 2019): AdaIN statistics, truncation,
style mixing, noise and a short end-to-end run through the Trainer (with R1, which tests/test_losses.py checks)."""
import math

import pytest
import torch
import torch.nn.functional as F

from ganlib import losses
from ganlib.experiments.stylegan import droplet_ratio, droplet_ratios, mix_grid
from ganlib.losses import r1_regularizer
from ganlib.models.stylegan import (AdaIN, MappingNetwork, ModulatedConv2d, ModulatedStyleLayer, StyleDiscriminator,
                                    StyleGenerator, StyleLayer, adain, style_mixing, truncate)
from ganlib.hooks import Hook
from ganlib.train import Trainer


def small_G(**kw) -> StyleGenerator:
    kw = {"z_dim": 16, "w_dim": 16, "mapping_depth": 2, "resolution": 16, "fmap_base": 128, "fmap_max": 8, **kw}
    return StyleGenerator(**kw)


def test_adain_output_has_the_styles_mean_and_std(device):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 5, 8, 8, generator=g) * 4 + 2).to(device)
    y_s, y_b = torch.randn(3, 5, generator=g).to(device), torch.randn(3, 5, generator=g).to(device)
    out = adain(x, y_s, y_b)
    mean, std = out.mean(dim=(2, 3)), out.std(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(mean, y_b, atol=1e-5, rtol=0)
    torch.testing.assert_close(std, (y_s + 1).abs(), atol=1e-4, rtol=1e-4)


def test_adain_module_applies_the_affine_map_of_w():
    torch.manual_seed(0)
    layer = AdaIN(channels=4, w_dim=6)
    with torch.no_grad():
        layer.style.bias.normal_()
    x, w = torch.randn(2, 4, 5, 5) * 3 - 1, torch.randn(2, 6)
    y = layer.style(w)  # the independent route: y = A(w), then the statistics must be (y_s + 1, y_b)
    out = layer(x, w)
    torch.testing.assert_close(out.mean(dim=(2, 3)), y[:, 4:], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), (y[:, :4] + 1).abs(), atol=1e-4, rtol=1e-4)


def test_mapping_uses_lr_multiplier_and_pixel_norm():
    m = MappingNetwork(z_dim=8, w_dim=8, depth=3)
    assert len(m.layers) == 3
    for layer in m.layers:
        assert layer.lr_mul == 0.01
        assert abs(layer.weight.std().item() - 100.0) < 30.0  # stored as N(0, 1/lr_mul^2)
    z = torch.randn(4, 8)
    torch.testing.assert_close(m(z), m(z * 7.0))  # pixel norm on z: only the direction of z matters


def test_truncation_psi_one_is_identity_and_psi_zero_gives_w_avg(device):
    torch.manual_seed(0)
    G = small_G().to(device).eval()
    G.w_avg.copy_(torch.randn(G.w_dim))
    z = torch.randn(4, G.z_dim, device=device)
    ws = G.broadcast(G.mapping(z))
    torch.testing.assert_close(truncate(ws, G.w_avg, 1.0), ws)
    torch.testing.assert_close(truncate(ws, G.w_avg, 0.0), G.w_avg.expand_as(ws))
    torch.testing.assert_close(truncate(ws, G.w_avg, 0.5), (ws + G.w_avg) / 2)
    with torch.no_grad():
        for p in G.synthesis.parameters():  # nonzero noise weights: const noise must then be what fixes the output
            p.add_(0.1 * torch.randn_like(p))
        same = G(z, psi=0.0, noise_mode="const")
        torch.testing.assert_close(G(z, psi=1.0, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    for i in range(1, 4):  # four different latents, one image
        torch.testing.assert_close(same[i], same[0])


def test_only_layers_before_the_cutoff_are_truncated():
    torch.manual_seed(0)
    ws, w_avg = torch.randn(3, 6, 4), torch.randn(4)
    out = truncate(ws, w_avg, psi=0.3, cutoff=2)
    torch.testing.assert_close(out[:, :2], w_avg + 0.3 * (ws[:, :2] - w_avg))
    torch.testing.assert_close(out[:, 2:], ws[:, 2:])
    with pytest.raises(ValueError, match="cutoff"):
        truncate(ws, w_avg, 0.5, cutoff=7)


def test_style_mixing_probability_zero_uses_w1_everywhere():
    ws1, ws2 = torch.randn(5, 8, 3), torch.randn(5, 8, 3)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        out, crossover = style_mixing(ws1, ws2, prob=0.0, generator=g)
        assert crossover == 8
        assert torch.equal(out, ws1)


def test_style_mixing_crossover_lies_in_one_to_num_layers_and_splits_there():
    ws1, ws2 = torch.zeros(2, 8, 3), torch.ones(2, 8, 3)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(300):
        out, c = style_mixing(ws1, ws2, prob=1.0, generator=g)
        assert 1 <= c < 8
        seen.add(c)
        assert torch.equal(out[:, :c], ws1[:, :c]) and torch.equal(out[:, c:], ws2[:, c:])
    assert seen == set(range(1, 8))  # every legal crossover occurs (300 draws of 7 values)


def test_style_mixing_rate_matches_probability():
    ws1, ws2 = torch.zeros(1, 8, 2), torch.ones(1, 8, 2)
    g = torch.Generator().manual_seed(1)
    mixed = sum(style_mixing(ws1, ws2, 0.9, g)[1] < 8 for _ in range(2000))
    assert abs(mixed / 2000 - 0.9) < 4 * math.sqrt(0.9 * 0.1 / 2000)


def test_generator_mixes_only_in_training_mode_and_tracks_w_avg():
    torch.manual_seed(0)
    G = small_G(style_mixing_prob=1.0)
    z = torch.randn(6, G.z_dim)
    G.train()
    G(z)
    assert 1 <= G.last_crossover < G.num_layers
    expected = (1 - G.w_avg_beta) * G.mapping(z).mean(0)  # one EMA step from w_avg = 0
    torch.testing.assert_close(G.w_avg, expected.detach())
    G.eval()
    before = G.w_avg.clone()
    G(z)
    assert torch.equal(G.w_avg, before)


def test_noise_weight_zero_makes_output_deterministic(device):
    torch.manual_seed(0)
    G = small_G().to(device).eval()
    z = torch.randn(3, G.z_dim, device=device)
    with torch.no_grad():
        assert all(layer.noise.weight.abs().sum() == 0 for layer in G.synthesis.layers)  # init is 0
        torch.testing.assert_close(G(z), G(z))  # fresh random noise each call, no effect
        G.synthesis.layers[3].noise.weight.fill_(0.5)
        assert not torch.allclose(G(z), G(z))  # the control: with a nonzero weight, noise changes the image
        torch.testing.assert_close(G(z, noise_mode="const"), G(z, noise_mode="const"))


def test_noise_list_overrides_per_layer():
    torch.manual_seed(0)
    G = small_G().eval()
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise.weight.fill_(0.3)
        z = torch.randn(2, G.z_dim)
        noise = G.synthesis.make_noise(2, "random")
        noise_off_5 = list(noise)
        noise_off_5[5] = torch.zeros_like(noise[5])
        a, b = G(z, noise=noise), G(z, noise=noise)
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, G(z, noise=noise_off_5))


def test_shapes_layers_and_errors():
    G = small_G()
    assert G.num_layers == 2 * int(math.log2(16)) - 2  # two layers per resolution 4..16
    assert torch.equal(G.synthesis.const.detach(), torch.ones_like(G.synthesis.const))  # official init
    assert all(isinstance(layer, StyleLayer) for layer in G.synthesis.layers)  # 'adain' is the default
    assert G.synthesis.layers[0].conv is None and G.synthesis.layers[1].conv is not None  # no conv on the constant
    D = StyleDiscriminator(resolution=16, fmap_base=128, fmap_max=8)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, 3, 16, 16) and D(x).shape == (4,)
    with pytest.raises(ValueError, match="expects images"):
        D(torch.randn(4, 1, 16, 16))
    with pytest.raises(ValueError, match="expects z of shape"):
        G(torch.randn(4, 3))
    with pytest.raises(ValueError, match="power of two"):
        StyleGenerator(resolution=24)
    with pytest.raises(ValueError, match="noise mode"):
        G(torch.randn(4, 16), noise_mode="loud")


def test_mix_grid_row_source_controls_layers_before_crossover():
    torch.manual_seed(0)
    G = small_G().eval()
    zr, zc = torch.randn(2, G.z_dim), torch.randn(3, G.z_dim)
    grid = mix_grid(G, zr, zc, crossover=G.num_layers)  # everything from the rows
    torch.testing.assert_close(grid[1, 0], grid[1, 2])
    torch.testing.assert_close(grid[1, 0], G(zr[1:2], noise_mode="const")[0])
    grid0 = mix_grid(G, zr, zc, crossover=0)  # everything from the columns
    torch.testing.assert_close(grid0[0, 2], G(zc[2:3], noise_mode="const")[0])


def test_trains_through_trainer_with_lazy_r1_and_ema(device):
    torch.manual_seed(0)
    G = small_G(resolution=8)
    D = StyleDiscriminator(resolution=8, fmap_base=64, fmap_max=8)

    class Data:
        def batch(self, i):
            return torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(i)) * 2 - 1

    trainer = Trainer(G, D, Data(), d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                      d_penalty=r1_regularizer(1.0), d_penalty_every=2, lr=1e-3, betas=(0.0, 0.99),
                      ema_decay=0.9, progress=False, log_every=1, device=device)
    noise_before = G.synthesis.layers[2].noise.weight.detach().clone()
    trainer.fit(4)
    assert len(trainer.history["step"]) == 4
    assert not torch.isnan(torch.tensor(trainer.history["d_penalty"][1]))  # penalty ran on D step 2
    assert not torch.equal(G.synthesis.layers[2].noise.weight.detach(), noise_before)  # noise weights learn
    assert torch.equal(trainer.G_ema.w_avg, G.w_avg) and G.w_avg.abs().sum() > 0
    assert trainer.sample(4).shape == (4, 3, 8, 8)


def test_modulated_conv_matches_a_per_sample_conv_with_scaled_then_normalised_weights(device):
    """StyleGAN2 eqs. 1-3 computed the slow way, one sample at a time with an ordinary conv."""
    torch.manual_seed(0)
    layer = ModulatedConv2d(3, 4, w_dim=5).to(device)
    with torch.no_grad():
        layer.style.bias.normal_()
    x, w = torch.randn(2, 3, 6, 6, device=device), torch.randn(2, 5, device=device)
    s = layer.style(w)
    for i in range(2):
        weight = layer.weight * layer.weight_scale * s[i].view(1, 3, 1, 1)          # eq. 1: w'_ijk = s_i w_ijk
        weight = weight / weight.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()     # eq. 3: unit L2 norm per output
        expected = F.conv2d(x[i:i + 1], weight, padding=1)
        torch.testing.assert_close(layer(x, w)[i:i + 1], expected, atol=1e-5, rtol=1e-4)


def test_demodulation_cancels_a_global_style_scale_and_keeps_unit_variance():
    torch.manual_seed(0)
    layer = ModulatedConv2d(16, 8, w_dim=4)
    x, w = torch.randn(4, 16, 12, 12), torch.randn(4, 4)
    with torch.no_grad():
        out = layer(x, w)
        layer.style.weight.mul_(3.0)
        layer.style.bias.mul_(3.0)                  # every style scaled by 3 ...
        torch.testing.assert_close(layer(x, w), out, atol=1e-5, rtol=1e-4)  # ... cancels out
    # i.i.d. N(0, 1) input and unit-norm weights: each output pixel is N(0, 1) (away from the zero padding)
    big = torch.randn(64, 16, 12, 12)
    with torch.no_grad():
        inner = layer(big, torch.randn(64, 4))[:, :, 1:-1, 1:-1]
    assert abs(inner.var().item() - 1.0) < 0.05
    plain = ModulatedConv2d(16, 8, w_dim=4, demodulate=False)
    with torch.no_grad():
        plain.style.weight.zero_()                  # style = bias = 1: an ordinary equalized conv
    torch.testing.assert_close(plain(x, w), F.conv2d(x, plain.weight * plain.weight_scale, padding=1))


def test_droplet_ratios_follow_the_synthesis_layer_by_layer():
    torch.manual_seed(0)
    G = small_G(const_init="randn")
    z = torch.randn(8, G.z_dim)
    ratios = droplet_ratios(G, z)
    assert len(ratios) == G.num_layers and all(r >= 1.0 for r in ratios)
    with torch.no_grad():   # spike the last layer's bias map via its noise: the last ratio must jump
        noise = [None] * (G.num_layers - 1) + [torch.zeros(1, 1, 16, 16)]
        noise[-1][0, 0, 0, 15] = 1e4
        G.synthesis.layers[-1].noise.weight.fill_(1.0)
        G.synthesis.register_buffer(f"noise_const_{G.num_layers - 1}", noise[-1])
    assert droplet_ratios(G, z)[-1] > 0.9 * 16 and droplet_ratios(G, z)[:-1] == ratios[:-1]


def test_demod_generator_samples_are_independent_and_train(device):
    torch.manual_seed(0)
    G = small_G(modulation="demod").to(device).eval()
    z = torch.randn(3, G.z_dim, device=device)
    assert G.synthesis.layers[0].conv is not None          # StyleGAN2 convolves the constant too
    assert all(isinstance(layer, ModulatedStyleLayer) for layer in G.synthesis.layers)  # no AdaIN anywhere
    with torch.no_grad():
        full = G(z, noise_mode="const")
        torch.testing.assert_close(G(z[1:2], noise_mode="const"), full[1:2], atol=1e-5, rtol=1e-4)
    G.train()
    G(z).square().mean().backward()
    assert G.synthesis.layers[3].conv.style.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="modulation"):
        small_G(modulation="batchnorm")


def test_droplet_ratio_of_flat_maps_is_one_and_of_a_single_spike_is_its_height():
    n, c, h = 2, 3, 8
    sign = (torch.arange(h).view(-1, 1) + torch.arange(h)) % 2 * 2 - 1.0
    x = torch.randn(n, c, 1, 1) + 0.5 * sign                # a checkerboard: every |x - mean| equals the std
    assert droplet_ratio(x) == pytest.approx(1.0, abs=1e-5)
    spike = torch.zeros(n, c, h, h)
    spike[:, :, 0, 7] = 1.0                                 # one pixel of 64: max/std = (63/64) / (sqrt(63)/64)
    assert droplet_ratio(spike) == pytest.approx(math.sqrt(63), rel=1e-5)
    with pytest.raises(ValueError, match="feature maps"):
        droplet_ratio(torch.randn(2, 8))


# --- optional progressive growing (PGGAN's schedule driving StyleGAN's networks) ---------------------

def grown_pair(seed: int = 0, progressive: bool = True):
    torch.manual_seed(seed)
    G = small_G(progressive=progressive, const_init="randn")
    torch.manual_seed(seed + 1)
    D = StyleDiscriminator(resolution=16, fmap_base=128, fmap_max=8, progressive=progressive)
    return G.eval(), D


def test_progressive_networks_at_the_top_level_are_the_fixed_resolution_networks():
    G, D = grown_pair(progressive=True)
    G_fixed, D_fixed = grown_pair(progressive=False)
    G_fixed.load_state_dict(G.state_dict(), strict=False)   # the extra toRGB/fromRGB and stage buffers aside
    D_fixed.load_state_dict(D.state_dict(), strict=False)
    z, x = torch.randn(4, G.z_dim), torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise_mode="const"), G_fixed(z, noise_mode="const"))
        torch.testing.assert_close(D(x), D_fixed(x))


def test_progressive_generator_below_the_top_runs_only_the_low_layers_and_upsamples():
    G, _ = grown_pair()
    z = torch.randn(3, G.z_dim)
    G.set_stage(1, 1.0)                                      # 8x8 on top of a 16x16 generator
    with torch.no_grad():
        out = G(z, noise_mode="const")
        ws, noise = G.styles(z), G.synthesis.make_noise(3, "const")
        x = G.synthesis.const.expand(3, -1, -1, -1)
        for i in range(4):                                   # the independent route: layers 0-3, then 8x8 toRGB
            x = G.synthesis.layers[i](x, ws[:, i], noise[i])
        small = G.synthesis.to_rgb_lower[1](x)
    torch.testing.assert_close(out, small.repeat_interleave(2, 2).repeat_interleave(2, 3))
    with torch.no_grad():
        G.synthesis.layers[5].conv.weight.add_(1.0)          # a 16x16 layer: not used at level 1
        torch.testing.assert_close(G(z, noise_mode="const"), out)


def test_progressive_fade_in_blends_the_two_resolutions_linearly():
    G, D = grown_pair()
    z, x = torch.randn(2, G.z_dim), torch.randn(4, 3, 16, 16)

    def at(net, level, alpha, inp, **kw):
        net.set_stage(level, alpha)
        with torch.no_grad():
            return net(inp, **kw)

    old, new = at(G, 1, 1.0, z, noise_mode="const"), at(G, 2, 1.0, z, noise_mode="const")
    torch.testing.assert_close(at(G, 2, 0.0, z, noise_mode="const"), old)   # alpha 0: the old path only
    torch.testing.assert_close(at(G, 2, 0.25, z, noise_mode="const"), 0.75 * old + 0.25 * new)
    torch.testing.assert_close(at(D, 2, 0.0, x), at(D, 1, 1.0, x))          # D mirrors it
    pooled = torch.nn.functional.avg_pool2d(x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(at(D, 1, 1.0, pooled), at(D, 1, 1.0, x))     # D at 8x8 sees only 8x8 detail


def test_staging_needs_a_progressive_model_and_a_valid_stage():
    G, D = grown_pair(progressive=False)
    with pytest.raises(ValueError, match="progressive=True"):
        G.set_stage(0)
    with pytest.raises(ValueError, match="progressive=True"):
        D.set_stage(0)
    G, D = grown_pair()
    with pytest.raises(ValueError, match="level"):
        G.set_stage(3)
    with pytest.raises(ValueError, match="alpha"):
        D.set_stage(1, 1.5)


def test_progressive_stylegan_trains_through_the_pggan_schedule(device):
    from ganlib.experiments.progressive import ProgressiveSchedule, ProgressiveSource
    G, D = grown_pair()
    G.train()
    schedule = ProgressiveSchedule(G.synthesis.n_levels, stabilize_steps=2, fade_steps=2)

    class Data:
        def batch(self, i):
            return torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(i)) * 2 - 1

    seen = []

    class Watch(Hook):                                      # record the stage each step trains at
        def on_step_start(self, trainer, step):
            seen.append((trainer.G.stage[0], trainer.D.stage[0], trainer.G_ema.stage[0]))

    trainer = Trainer(G, D, ProgressiveSource(Data(), schedule), d_loss=losses.discriminator_bce,
                      g_loss=losses.generator_nonsaturating, d_penalty=r1_regularizer(1.0), d_penalty_every=2,
                      lr=1e-3, betas=(0.0, 0.99), ema_decay=0.9, progress=False, log_every=1, device=device,
                      hooks=[schedule, Watch()])
    trainer.fit(schedule.total_steps)
    assert [s[0] for s in seen] == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert all(a == b == c for a, b, c in seen)             # G, D and G_ema always at the same level
    assert all(math.isfinite(v) for v in trainer.history["d_loss"] + trainer.history["g_loss"])
    assert trainer.sample(2).shape == (2, 3, 16, 16)


# --- chapter-10 measurements and explorers ---------------------------------------------------------

def test_linear_probe_recovers_linear_targets_and_not_noise():
    from ganlib.experiments.stylegan import linear_probe
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 5, generator=g)
    a = torch.randn(5, generator=g)
    y = x @ a + 2.0
    assert linear_probe(x[:400], y[:400], x[400:], y[400:], categorical=False, ridge=0.0) > 0.999
    labels = (x @ torch.randn(5, 3, generator=g)).argmax(1)  # classes with linear boundaries
    assert linear_probe(x[:400], labels[:400], x[400:], labels[400:], categorical=True) > 0.9
    noise = torch.randint(0, 4, (600,), generator=g)
    assert linear_probe(x[:400], noise[:400], x[400:], noise[400:], categorical=True) < 0.4  # chance is 0.25


def test_effective_dimension_counts_evenly_used_directions():
    from ganlib.experiments.stylegan import effective_dimension
    # +-e_1 .. +-e_k in 10 dims: covariance is exactly (2/(2k-1)) I_k, so the participation ratio is exactly k
    for k in (1, 3, 7):
        eye = torch.eye(10)[:k]
        x = torch.cat([eye, -eye])
        assert effective_dimension(x) == pytest.approx(k, rel=1e-9)
        assert effective_dimension(5 * x + 3) == pytest.approx(k, rel=1e-9)  # scale and shift do not matter
    # two directions with variances 1 and 4: (1 + 4)^2 / (1 + 16) = 25 / 17
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    assert effective_dimension(x) == pytest.approx(25 / 17, rel=1e-9)
    g = torch.Generator().manual_seed(0)
    assert effective_dimension(torch.randn(20000, 16, generator=g)) == pytest.approx(16, rel=0.03)
    with pytest.raises(ValueError, match="zero variance"):
        effective_dimension(torch.ones(5, 3))
    with pytest.raises(ValueError, match="rows"):
        effective_dimension(torch.ones(5))


def test_layer_ranges_and_transfer_scores_of_all_and_no_layers():
    from ganlib.experiments import stylegan as lab
    torch.manual_seed(0)
    G = small_G(resolution=32, fmap_base=64, fmap_max=4).eval()
    with torch.no_grad():
        G.synthesis.const.normal_()
    assert lab.layer_ranges(G) == {"4x4": (0, 2), "8x8": (2, 4), "16x16": (4, 6), "32x32": (6, 8)}
    net = lab.FactorNet(width=4).eval()
    scores = lab.style_transfer_scores(G, net, n=64, ranges={"none": (0, 0)})
    for k in lab.FACTORS:  # every layer from B reproduces B exactly; no layer from B leaves A unchanged
        assert scores["all"][k] == pytest.approx(1.0, abs=1e-5) or math.isnan(scores["all"][k])
        assert scores["none"][k] == pytest.approx(0.0, abs=1e-5) or math.isnan(scores["none"][k])


def test_noise_variation_is_zero_without_noise_and_positive_with_it():
    from ganlib.widgets.stylegan import noise_variation
    torch.manual_seed(0)
    G = small_G().eval()
    z = torch.randn(1, G.z_dim)
    assert noise_variation(G, z, draws=4)["std"].max() == 0  # noise weights start at 0
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    assert noise_variation(G, z, draws=4)["std"].mean() > 0
    assert noise_variation(G, z, draws=4, enabled=[False] * G.num_layers)["std"].max() == 0


def test_explorers_recompute_when_a_control_changes():
    from ganlib.widgets.stylegan import NoiseExplorer, StyleMixingExplorer, TruncationExplorer
    torch.manual_seed(0)
    G = small_G().eval()
    with torch.no_grad():
        G.synthesis.const.normal_()
        for layer in G.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    mixer = StyleMixingExplorer(G, row_seeds=(1, 2), col_seeds=(3, 4, 5), crossover=2)
    assert mixer.images.shape[:2] == (2, 3)
    assert not torch.allclose(mixer.images[0, 0], mixer.images[0, 1])
    mixer.controls["crossover"].value = G.num_layers  # all layers from the row: columns stop mattering
    torch.testing.assert_close(mixer.images[0, 0], mixer.images[0, 2])
    trunc = TruncationExplorer(G, seeds=range(4), psi=1.0)
    trunc.controls["psi"].value = 0.0
    torch.testing.assert_close(trunc.images[0], trunc.images[3])
    noise = NoiseExplorer(G, seed=1, draws=4)
    assert noise.std.mean() > 0
    before = noise.images.clone()
    noise.button.click()  # "resample noise": new draws, same latent
    assert not torch.allclose(before, noise.images)
    noise.set_layers([False] * G.num_layers)
    assert noise.std.max() == 0
    with pytest.raises(ValueError, match="seeds"):
        mixer.controls["rows"].value = "1, two"


def test_given_noise_leaves_the_global_rng_alone():
    # reference.generate seeds its own noise: sampling a reference model must not shift the caller's random stream
    G = StyleGenerator(resolution=8, fmap_base=64, fmap_max=8, mapping_depth=1).eval()
    gen = torch.Generator().manual_seed(0)
    z, noise = torch.randn(2, G.z_dim, generator=gen), G.synthesis.make_noise(2, "random", generator=gen)
    state = torch.get_rng_state()
    with torch.no_grad():
        G(z, noise=noise)
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad():
        G(z, noise=noise[:-1] + [None])  # one layer left to the default: that one is drawn
    assert not torch.equal(torch.get_rng_state(), state)


def _hand_blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16  # [1, 2, 1] outer [1, 2, 1]
    return F.conv2d(x, k.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


@pytest.mark.parametrize("Layer", [StyleLayer, ModulatedStyleLayer])
def test_blur_false_drops_only_the_low_pass_after_upsampling(Layer):
    torch.manual_seed(0)
    blurred, sharp = Layer(4, 4, 8, upsample=True), Layer(4, 4, 8, upsample=True, blur=False)
    sharp.load_state_dict(blurred.state_dict())  # the filter holds no weights: same parameters, same keys
    with torch.no_grad():
        blurred.bias.normal_(), blurred.noise.weight.normal_()
        sharp.load_state_dict(blurred.state_dict())
    x, w, noise = torch.randn(2, 4, 4, 4), torch.randn(2, 8), torch.randn(2, 1, 8, 8)
    conv = blurred.convolve(F.interpolate(x, scale_factor=2, mode="nearest"), w)

    def rest(h):
        return F.leaky_relu(h + blurred.noise.weight.view(1, -1, 1, 1) * noise + blurred.bias.view(1, -1, 1, 1), 0.2)

    assert torch.allclose(sharp.features(x, w, noise), rest(conv), atol=1e-5)
    assert torch.allclose(blurred.features(x, w, noise), rest(_hand_blur(conv)), atol=1e-5)


def test_blur_false_removes_every_filter_and_keeps_the_weights():
    G, G_sharp = small_G(modulation="demod"), small_G(modulation="demod", blur=False)
    D, D_sharp = StyleDiscriminator(resolution=16, fmap_base=128, fmap_max=8), \
        StyleDiscriminator(resolution=16, fmap_base=128, fmap_max=8, blur=False)
    G_sharp.load_state_dict(G.state_dict()), D_sharp.load_state_dict(D.state_dict())
    blurs = [sum(type(m).__name__ == "Blur" for m in net.modules()) for net in (G, G_sharp, D, D_sharp)]
    assert blurs == [2, 0, 2, 0]  # G: one per upsampling (8x8, 16x16); D: one per block (16 -> 8, 8 -> 4)
    block = D_sharp.blocks[0]
    z = torch.randn(2, block.conv0.weight.shape[1], 16, 16)
    by_hand = F.leaky_relu(F.avg_pool2d(block.conv1(F.leaky_relu(block.conv0(z), 0.2)), 2), 0.2)
    assert torch.allclose(block(z), by_hand, atol=1e-5)
    assert not torch.allclose(D.blocks[0](z), by_hand, atol=1e-3)
