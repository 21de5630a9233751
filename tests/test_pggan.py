"""PGGAN: fade-in endpoints, what D sees, the schedule, optimiser resets and mid-fade resume."""
import pytest
import torch

from ganlib.data import TensorSource
from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer
from ganlib.hooks import Hook
from ganlib.layers import upsample2x
from ganlib.models import pggan
from ganlib.progressive import fade_reals, pool_to, to_full_size

CH = (16, 8, 8)  # 4, 8, 16


def _nets(mbstd: int = 4, up: str = "nearest", seed: int = 0):
    torch.manual_seed(seed)
    G = pggan.PGGANGenerator(z_dim=8, img_channels=3, resolution=16, channels=CH, up=up)
    D = pggan.PGGANDiscriminator(img_channels=3, resolution=16, channels=CH, mbstd_group=mbstd)
    return G, D


def _through_the_fade(net, x, level, alpha):
    """net(x) at the end of level - 1's phase, then at alpha 0, 1 and ``alpha`` of level's fade-in."""
    outputs = []
    with torch.no_grad():
        for stage in [(level - 1, 1.0), (level, 0.0), (level, 1.0), (level, alpha)]:
            net.set_stage(*stage)
            outputs.append(net(x))
    return outputs


@pytest.mark.parametrize("level", [1, 2])
def test_generator_fade_endpoints(level):
    G, _ = _nets()
    z = torch.randn(4, 8)
    old_only, at0, at1, mid = _through_the_fade(G, z, level, 0.25)
    with torch.no_grad():
        # the new path by hand: features of the previous resolution, the new block, its to-RGB, up to 16x16
        x = G.blocks[0](G.latent_norm(z))
        for block in G.blocks[1:level]:
            x = block(x)
        new = to_full_size(G.to_rgb[level](G.blocks[level](x)), 16)
    assert at0.shape == (4, 3, 16, 16)
    assert torch.equal(at0, old_only)  # alpha = 0: the up-sampled old path, bit for bit
    assert torch.equal(at1, new)       # alpha = 1: the new path only
    assert torch.allclose(mid, 0.75 * old_only + 0.25 * new, atol=1e-6)


def test_generator_alpha_decides_which_weights_matter():
    G, _ = _nets()
    z = torch.randn(4, 8)
    G.set_stage(2, 1.0)
    before = G(z).detach()
    with torch.no_grad():
        G.to_rgb[1].weight.add_(1.0)  # the old to-RGB: irrelevant once alpha = 1
    assert torch.equal(G(z), before)
    G.set_stage(2, 0.0)
    before = G(z).detach()
    with torch.no_grad():
        G.to_rgb[2].weight.add_(1.0)  # the new to-RGB: irrelevant while alpha = 0
    assert torch.equal(G(z), before)


@pytest.mark.parametrize("level", [1, 2])
def test_discriminator_fade_endpoints(level):
    _, D = _nets()
    x = torch.randn(8, 3, 16, 16)
    old_only, at0, at1, mid = _through_the_fade(D, x, level, 0.5)
    assert torch.equal(at0, old_only)
    assert not torch.allclose(at1, old_only)
    # D is nonlinear after the blend, so check the blend point itself: perturbing the old from-RGB
    # changes nothing at alpha = 1
    with torch.no_grad():
        D.from_rgb[level - 1].weight.add_(1.0)
        D.set_stage(level, 1.0)
        assert torch.equal(D(x), at1)
        D.set_stage(level, 0.5)
        assert not torch.equal(D(x), mid)


@pytest.mark.parametrize("level", [0, 1])
def test_discriminator_sees_only_current_resolution(level):
    _, D = _nets()
    x = torch.randn(8, 3, 16, 16)
    # a pattern that averages to zero inside every cell of the current grid is invisible to D ...
    pattern = torch.randn(8, 3, 16, 16)
    pattern = pattern - to_full_size(pool_to(pattern, 16, 4 * 2**level), 16)
    with torch.no_grad():
        D.set_stage(level, 1.0)
        assert torch.allclose(D(x), D(x + pattern), atol=1e-5)
        D.set_stage(2, 1.0)  # ... but not at full resolution
        assert not torch.allclose(D(x), D(x + pattern), atol=1e-3)


def test_fade_reals_endpoints():
    x = torch.randn(4, 3, 16, 16)
    for level in (1, 2):
        coarse = fade_reals(x, level - 1, 1.0)
        assert torch.equal(fade_reals(x, level, 0.0), coarse)
        fine = to_full_size(pool_to(x, 16, 4 * 2**level), 16)
        assert torch.equal(fade_reals(x, level, 1.0), fine)
        assert torch.allclose(fade_reals(x, level, 0.4), 0.6 * coarse + 0.4 * fine, atol=1e-6)
    assert torch.equal(fade_reals(x, 2, 1.0), x)
    # level 0 on 16x16: constant 4x4 cells holding the cell means
    cells = fade_reals(x, 0, 1.0)
    assert torch.allclose(cells[:, :, 0, 0], x[:, :, :4, :4].mean(dim=(2, 3)), atol=1e-6)
    assert torch.equal(cells, upsample2x(upsample2x(cells[:, :, ::4, ::4])))


def test_schedule_phases_and_alpha():
    s = ProgressiveSchedule(n_levels=3, stabilize_steps=4, fade_steps=2)
    expected = [(0, 0, 1.0)] * 4 + [(1, 1, 0.0), (1, 1, 0.5)] + [(2, 1, 1.0)] * 4 + [(3, 2, 0.0), (3, 2, 0.5)] + \
        [(4, 2, 1.0)] * 6
    assert [s.stage_at(t) for t in range(18)] == expected
    assert s.total_steps == 16
    abrupt = ProgressiveSchedule(n_levels=2, stabilize_steps=3, fade_steps=0)
    assert [abrupt.stage_at(t)[1:] for t in range(5)] == [(0, 1.0)] * 3 + [(1, 1.0)] * 2
    branch = ProgressiveSchedule(n_levels=3, stabilize_steps=4, fade_steps=0, start_level=1, start_step=6)
    assert [branch.stage_at(t)[1:] for t in (6, 9, 10, 20)] == [(1, 1.0), (1, 1.0), (2, 1.0), (2, 1.0)]
    with pytest.raises(ValueError, match="before"):
        branch.stage_at(5)


def _trainer(seed: int = 0, path=None, every: int = 0, stab: int = 3, fade: int = 3):
    G, D = _nets(seed=seed)
    x = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    schedule = ProgressiveSchedule(3, stab, fade)
    trainer = make_trainer(G, D, TensorSource(x, batch_size=8, seed=2), schedule, ema_decay=0.9,
                           progress=False, log_every=1, checkpoint_path=path, checkpoint_every=every,
                           device=torch.device("cpu"))
    return trainer, schedule


def test_optimizers_reset_at_each_phase_change():
    trainer, schedule = _trainer()
    starts = {start for _, _, start, _ in schedule.phases}
    seen = []

    class Spy(Hook):
        def on_step_start(self, tr, step):
            seen.append((step, id(tr.g_opt), len(tr.g_opt.state), len(tr.d_opt.state)))

    trainer.hooks.append(Spy())
    trainer.fit(10)
    for (step, opt_id, g_state, d_state), (_, prev_id, _, _) in zip(seen[1:], seen[:-1]):
        if step in starts:
            assert opt_id != prev_id and g_state == 0 and d_state == 0  # fresh Adam, no moments
        else:
            assert opt_id == prev_id and g_state > 0


def test_resume_mid_fade_continues_exactly(tmp_path):
    path = tmp_path / "pg.pt"
    # uninterrupted
    full, _ = _trainer()
    full.fit(8)
    # interrupted after step 4, inside the first fade (steps 3, 4, 5) where alpha = 1/3
    first, schedule = _trainer(path=path, every=5)
    first.fit(5)
    saved_alpha = schedule.alpha
    assert schedule.level == 1 and saved_alpha == pytest.approx(1 / 3) and float(first.G.alpha) == saved_alpha
    resumed, schedule2 = _trainer(seed=123)  # different init: everything must come from the checkpoint
    resumed.resume(path)
    assert (schedule2.level, schedule2.alpha) == (1, saved_alpha)
    assert float(resumed.G.alpha) == saved_alpha and float(resumed.D.alpha) == saved_alpha
    assert float(resumed.G_ema.alpha) == saved_alpha
    resumed.fit(8)
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)
    assert full.history["d_loss"] == resumed.history["d_loss"]


def test_minibatch_stddev_couples_samples_only_when_on():
    for mbstd, coupled in ((4, True), (0, False)):
        _, D = _nets(mbstd=mbstd)
        D.set_stage(2, 1.0)
        x = torch.randn(8, 3, 16, 16)
        y = x.clone()
        y[2] += 1.0  # sample 2 shares a group with sample 0 (strided groups: i mod N/4)
        with torch.no_grad():
            changed = not torch.allclose(D(x)[0], D(y)[0])
        assert changed == coupled


def test_transposed_variant_and_shapes():
    G, D = _nets(up="transposed")
    for level in range(3):
        G.set_stage(level, 0.5 if level else 1.0)
        D.set_stage(level, 0.5 if level else 1.0)
        out = G(torch.randn(4, 8))
        assert out.shape == (4, 3, 16, 16) and D(out).shape == (4,)


def test_bad_input():
    G, D = _nets()
    with pytest.raises(ValueError, match="level"):
        G.set_stage(3)
    with pytest.raises(ValueError, match="alpha"):
        G.set_stage(1, 1.5)
    with pytest.raises(ValueError, match="expects z of shape"):
        G(torch.randn(4, 9))
    with pytest.raises(ValueError, match="expects images"):
        D(torch.randn(4, 1, 16, 16))
    with pytest.raises(ValueError, match="power of two"):
        pggan.PGGANGenerator(resolution=24)
    with pytest.raises(ValueError, match="channels"):
        pggan.PGGANGenerator(resolution=16, channels=(8, 8))
    with pytest.raises(ValueError, match="same resolution"):
        make_trainer(G, D, TensorSource(torch.randn(8, 3, 16, 16), batch_size=4),
                     ProgressiveSchedule(2, 2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_growing_run_on_gpu_matches_endpoints():
    G, D = _nets()
    x = torch.rand(32, 3, 16, 16) * 2 - 1
    schedule = ProgressiveSchedule(3, 2, 2)
    trainer = make_trainer(G, D, TensorSource(x, batch_size=8, device=torch.device("cuda")), schedule,
                           progress=False, device=torch.device("cuda"))
    trainer.fit(schedule.total_steps)
    assert torch.isfinite(torch.tensor(trainer.history["d_loss"])).all()
    G.set_stage(2, 0.0)
    z = torch.randn(4, 8, device="cuda")
    with torch.no_grad():
        at0 = G(z)
        G.set_stage(1, 1.0)
        assert torch.equal(at0, G(z))


def test_fade_slider_widget_logic():
    pytest.importorskip("ipywidgets")
    import matplotlib
    matplotlib.use("Agg")
    from ganlib.widgets.multiscale import FadeSlider, draw_fade_strip

    G, _ = _nets()
    G.set_stage(2, 1.0)
    z = torch.randn(4, 8)
    slider = FadeSlider(G, z, level=2, nrow=4)
    slider.alpha.value = 0.0
    with torch.no_grad():
        G.set_stage(1, 1.0)
        old = G(z)
        G.set_stage(2, 1.0)
        new = G(z)
    assert torch.equal(slider.images, old)
    slider.alpha.value = 1.0
    assert torch.equal(slider.images, new)
    assert G.stage == (2, 1.0)  # the widget works on a copy
    fig = draw_fade_strip(G, 2, z[:2], alphas=(0.0, 1.0))
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="level >= 1"):
        draw_fade_strip(G, 0, z)
