"""DCGAN: shapes per size, the paper's architecture rules, the init statistics, clear errors."""
import pytest
import torch
from torch import nn

from ganlib.models.dcgan import Discriminator, Generator, ladder

SIZES = [(28, 1), (32, 1), (32, 3), (64, 3)]


def test_shapes_each_size(device):
    for size, channels in SIZES:
        G = Generator(z_dim=16, image_size=size, channels=channels, width=8).to(device)
        D = Discriminator(image_size=size, channels=channels, width=8).to(device)
        x = G(torch.randn(5, 16, device=device))
        assert x.shape == (5, channels, size, size)
        assert x.abs().max() <= 1.0  # tanh output
        assert D(x).shape == (5,)


def test_64px_matches_pytorch_examples_layout():
    # pytorch/examples dcgan (ngf = ndf = 64): G 100 -> 512@4 -> 256@8 -> 128@16 -> 64@32 -> 3@64.
    assert ladder(64, 64) == (4, [512, 256, 128, 64])
    G, D = Generator(100, 64, 3, 64), Discriminator(64, 3, 64)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    assert (convs[0].kernel_size, convs[0].stride, convs[0].padding) == ((4, 4), (1, 1), (0, 0))
    assert all((m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1)) for m in convs[1:])
    dconvs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in dconvs] == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert all((m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1)) for m in dconvs[:-1])


def test_architecture_rules():
    G, D = Generator(16, 32, 1, 8), Discriminator(32, 1, 8)
    g_layers, d_layers = list(G.net), list(D.features)
    # G: BN + ReLU after every transposed conv but the last, Tanh out, no BN before the output.
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g_layers) == 3
    assert all(isinstance(m, nn.ReLU) for m in G.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    # D: no BN right after the first conv; LeakyReLU(0.2) everywhere; no Sigmoid (logits out).
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d_layers) == 2
    slopes = {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    no_fc_no_pool = (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)
    assert not any(isinstance(m, no_fc_no_pool) for m in list(G.modules()) + list(D.modules()))


def test_ablation_options():
    G, D = Generator(16, 28, 1, 8, batchnorm=False), Discriminator(28, 1, 8, batchnorm=False, activation="relu")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in list(G.modules()) + list(D.modules()))
    assert not any(isinstance(m, nn.LeakyReLU) for m in D.modules())
    assert D(G(torch.randn(3, 16))).shape == (3,)


def test_init_statistics():
    torch.manual_seed(0)
    G, D = Generator(100, 64, 3, 64), Discriminator(64, 3, 64)
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
                w = m.weight.detach()
                assert abs(w.mean().item()) < 0.002
                assert w.std().item() == pytest.approx(0.02, rel=0.05)
        gammas = torch.cat([m.weight.detach() for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
        betas = torch.cat([m.bias.detach() for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
        assert gammas.mean().item() == pytest.approx(1.0, abs=0.003)
        assert gammas.std().item() == pytest.approx(0.02, rel=0.1)
        assert torch.all(betas == 0)


def test_clear_errors():
    with pytest.raises(ValueError, match="image_size"):
        Generator(image_size=48)
    with pytest.raises(ValueError, match="activation"):
        Discriminator(activation="gelu")
    D = Discriminator(image_size=32, channels=1, width=8)
    with pytest.raises(ValueError, match="mnist\\(size=32\\)"):
        D(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="3 channels at 32x32"):
        D(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="z of shape"):
        Generator(16, 28, 1, 8)(torch.zeros(2, 10))


def test_trains_with_trainer(device):
    from ganlib import losses
    from ganlib.data import TensorSource
    from ganlib.train import Trainer

    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    G, D = Generator(16, 28, 1, 8), Discriminator(28, 1, 8)
    trainer = Trainer(G, D, TensorSource(x, batch_size=16, device=device), d_loss=losses.discriminator_bce,
                      g_loss=losses.generator_nonsaturating, progress=False, device=device)
    before = [p.detach().clone() for p in G.parameters()]
    trainer.fit(2)
    assert all(torch.isfinite(torch.tensor(trainer.history[k])).all() for k in ("d_loss", "g_loss"))
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, G.parameters()))


def test_slerp_endpoints_norm_and_closed_form():
    from ganlib.widgets.images import slerp

    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    # Orthogonal vectors of equal norm: the midpoint is at 45 degrees on the same circle.
    torch.testing.assert_close(slerp(a, b, 0.5), torch.tensor([[3 / 2 ** 0.5, 3 / 2 ** 0.5]]))
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    w = torch.randn(4, 100, generator=torch.Generator().manual_seed(1))
    w = w / w.norm(dim=1, keepdim=True) * z.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(z, w, 0.3).norm(dim=1), z.norm(dim=1))
    with pytest.raises(ValueError, match="t must be"):
        slerp(a, b, 1.5)


def test_interpolation_widget_logic_headless():
    from ganlib.widgets.images import LatentInterpolation

    G = Generator(16, 28, 1, 8)
    walk = LatentInterpolation(G, seed_a=0, seed_b=1, frames=5)
    assert walk.images.shape == (5, 1, 28, 28)
    torch.testing.assert_close(walk.latents[0:1], walk.z_a)
    torch.testing.assert_close(walk.latents[-1:], walk.z_b)
    assert walk.slider in walk.widget.children
    walk.slider.value = 4
    assert torch.equal(walk.current, walk.images[4])
