"""LapGAN: the coarse-to-fine chain against the Laplacian pyramid, what each network sees, level training."""
import pytest
import torch
from torch import nn

from ganlib.experiments.lapgan import make_level_trainer
from ganlib.models.lapgan import LapGAN, level_data, make_condition, split_condition
from ganlib.pyramid import gaussian_pyramid, laplacian_pyramid, reconstruct, upsample


def _model(n_classes: int = 0, channels: int = 1, base: str = "mlp") -> LapGAN:
    torch.manual_seed(0)
    return LapGAN(img_channels=channels, resolution=32, levels=3, z_dim=8, base_hidden=32 if base == "mlp" else 8,
                  hidden=(8, 4), kernel=3, n_classes=n_classes, base=base)


def test_sizes_and_chain_composition():
    model = _model()
    assert model.sizes == [8, 16, 32]
    out = model.sample_levels(4)
    assert [tuple(i.shape) for i in out["images"]] == [(4, 1, 8, 8), (4, 1, 16, 16), (4, 1, 32, 32)]
    for k in range(2):
        assert torch.equal(out["coarse"][k], upsample(out["images"][k]))              # l_k = u(I~_{k+1})
        assert torch.equal(out["images"][k + 1], out["coarse"][k] + out["residuals"][k])  # I~_k = l_k + h~_k
    assert model.sample(4).abs().max() <= 1


class _Oracle(nn.Module):
    """Returns stored real pyramid levels, to check that sampling is the pyramid's reconstruction."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, noise, cond=None):
        return self.value


def test_chain_with_real_residuals_reconstructs_the_image():
    model = _model(channels=3)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    pyr = laplacian_pyramid(x, 3)  # [h_32, h_16, I_8]
    gens = [_Oracle(pyr[2]), _Oracle(pyr[1]), _Oracle(pyr[0])]
    out = model.sample_levels(4, generators=gens)["images"][-1]
    assert torch.allclose(out, reconstruct(pyr)) and torch.allclose(out, x, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_level_data_is_residual_and_real_coarse(k):
    x = torch.rand(6, 1, 32, 32) * 2 - 1
    h, cond = level_data(x, 3, k)
    gauss = gaussian_pyramid(x, 3)  # [I_32, I_16, I_8]
    fine, coarse = gauss[2 - k], gauss[3 - k]
    assert torch.equal(cond, upsample(coarse))
    assert torch.allclose(h + cond, fine, atol=1e-6)  # what D_k sees for a real sample is the real image
    base, labels = level_data(x, 3, 0)
    assert torch.equal(base, gauss[2]) and labels is None


def test_discriminator_sees_only_the_sum():
    model = _model().eval()
    D = model.discriminators[1]
    h, l = torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)
    shift = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(D(h, l), D(h + shift, l - shift), atol=1e-5)


def test_generator_uses_noise_and_coarse_image():
    model = _model()
    G = model.generators[2]
    noise, cond = torch.rand(4, 1, 32, 32), torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        base = G(noise, cond)
        assert not torch.allclose(base, G(noise * 0, cond))
        assert not torch.allclose(base, G(noise, cond * 0))


def test_class_conditioning_packing_and_effect():
    model = _model(n_classes=10)
    coarse, labels = torch.randn(5, 1, 16, 16), torch.tensor([0, 3, 9, 1, 7])
    back, got = split_condition(make_condition(coarse, labels), 1, 10)
    assert torch.equal(back, coarse) and torch.equal(got, labels)
    G = model.generators[1]
    noise = torch.rand(5, 1, 16, 16)
    with torch.no_grad():
        a = G(noise, make_condition(coarse, labels))
        b = G(noise, make_condition(coarse, (labels + 1) % 10))
    assert not torch.allclose(a, b)
    imgs = model.sample(5, labels=labels)
    assert imgs.shape == (5, 1, 32, 32)
    with pytest.raises(ValueError, match="labels"):
        model.sample(5)
    with pytest.raises(ValueError, match="labels"):
        model.generators[0](torch.randn(2, 8), torch.tensor([0, 10]))


@pytest.mark.parametrize("k,base", [(0, "mlp"), (0, "conv"), (1, "mlp"), (2, "mlp")])
@pytest.mark.parametrize("n_classes", [0, 10])
def test_each_level_trains_alone(k, base, n_classes):
    model = _model(n_classes=n_classes, base=base)
    x, y = torch.rand(32, 1, 32, 32) * 2 - 1, torch.arange(32) % 10
    before = [p.detach().clone() for p in model.generators[k].parameters()]
    others = [p.detach().clone() for j, g in enumerate(model.generators) if j != k for p in g.parameters()]
    trainer = make_level_trainer(model, k, x, y if n_classes else None, batch_size=8, progress=False,
                                 device=torch.device("cpu"))
    trainer.fit(3)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in trainer.history["d_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generators[k].parameters()))
    after = [p for j, g in enumerate(model.generators) if j != k for p in g.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(others, after))


@pytest.mark.parametrize("channels", [1, 3])
def test_conv_base_draws_8x8_images_and_follows_labels(channels):
    model = _model(n_classes=10, channels=channels, base="conv").eval()
    G, D = model.generators[0], model.discriminators[0]
    z, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        x = G(z, labels)
        assert x.shape == (6, channels, 8, 8) and x.abs().max() <= 1  # tanh output, the base image I_K
        assert not torch.allclose(x, G(z, (labels + 1) % 10))
        # eval mode: each sample depends on its own (z, label) only, not on the rest of the batch
        assert torch.allclose(G(z[:2], labels[:2]), x[:2], atol=1e-6)
        assert D(x, labels).shape == (6,)
        assert not torch.allclose(D(x, labels), D(x, (labels + 1) % 10))
    out = model.sample_levels(6, labels=labels)
    assert [tuple(i.shape[-2:]) for i in out["images"]] == [(8, 8), (16, 16), (32, 32)]


def test_sampling_uses_and_keeps_batchnorm_statistics():
    model = _model(base="conv")
    model.train()
    base = model.generators[0]
    before = {k: v.clone() for k, v in base.state_dict().items()}
    one = model.sample(1)  # a batch of one would fail BatchNorm in training mode
    assert one.shape == (1, 1, 32, 32)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # running stats untouched
    assert all(g.training for g in model.generators)  # modes restored
    g = torch.Generator().manual_seed(3)
    a = model.sample_levels(4, generator=g)["images"][0]
    g = torch.Generator().manual_seed(3)
    b = model.sample_levels(8, generator=g)["images"][0][:4]
    assert torch.allclose(a, b, atol=1e-6)  # eval-mode BatchNorm: a sample does not depend on the batch


def test_bad_input():
    with pytest.raises(ValueError, match="unknown base"):
        LapGAN(base="resnet")
    with pytest.raises(ValueError, match="8x8"):
        LapGAN(resolution=64, levels=3, base="conv")  # base level would be 16x16
    with pytest.raises(ValueError, match="levels"):
        LapGAN(resolution=32, levels=5)
    with pytest.raises(ValueError, match="hidden"):
        LapGAN(resolution=32, levels=3, hidden=(8,))
    model = _model()
    with pytest.raises(ValueError, match="condition"):
        model.generators[1](torch.rand(2, 1, 16, 16), torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="noise"):
        model.generators[1](torch.rand(2, 1, 8, 8), torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match="k must be"):
        level_data(torch.randn(2, 1, 32, 32), 3, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lapgan_on_gpu():
    model = _model().cuda()
    x = torch.rand(16, 1, 32, 32, device="cuda") * 2 - 1
    for k in range(3):
        make_level_trainer(model, k, x, batch_size=8, progress=False).fit(2)
    assert model.sample(4).device.type == "cuda"


def test_level_viewer_widget_logic():
    pytest.importorskip("ipywidgets")
    import matplotlib
    matplotlib.use("Agg")
    from ganlib.widgets.multiscale import LapGANLevels, draw_lapgan_levels

    model = _model(n_classes=10)
    viewer = LapGANLevels(model, n=2)
    first = viewer.out["images"][-1].clone()
    viewer.seed.value = 5
    assert not torch.equal(first, viewer.out["images"][-1])
    viewer.seed.value = 0
    assert torch.equal(first, viewer.out["images"][-1])  # the seed fully determines the samples
    viewer.digit.value = 3
    assert not torch.equal(first, viewer.out["images"][-1])
    fig = draw_lapgan_levels(viewer.out, n=2)
    assert len(fig.axes) == 2 * 7  # base + (coarse, residual, sum) x 2 levels, per row


def test_fit_levels_for_splits_the_budget_by_hand():
    from ganlib.experiments.lapgan import fit_levels_for

    model = _model()
    images = torch.rand(32, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ticks = iter(range(1000))
    clock = lambda: float(next(ticks))  # noqa: E731  every reading is 1 s later
    gens, steps, total = fit_levels_for(model, images, 10.0, batch_size=8, ema_decay=0.9, chunk=2, clock=clock)
    # budgets 4.2, 3.5, 2.3 s; one clock reading per chunk, so ceil(budget) chunks of 2 steps each;
    # readings: start 0; level 0 at 1 and 2..6; level 1 at 7 and 8..11; level 2 at 12 and 13..15; the end 16
    assert steps == [10, 8, 6] and total == 16.0
    assert all(g is not model.generators[k] for k, g in enumerate(gens))  # the EMA copies
    ticks = iter(range(1000))
    gens, steps, _ = fit_levels_for(model, images, 0.0, batch_size=8, chunk=2, clock=clock)
    assert steps == [2, 2, 2] and all(g is model.generators[k] for k, g in enumerate(gens))  # one chunk each, no EMA
    assert model.sample(3, generators=gens).shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match="one share"):
        fit_levels_for(model, images, 1.0, shares=(0.5, 0.5))
