"""Conditional GAN: all three conditioning modes, on MNIST-sized and shapes-sized inputs."""
import pytest
import torch
import torch.nn.functional as F

from ganlib.models.cgan import MODES, ConditionalDiscriminator, ConditionalGenerator

CASES = [(10, 28, 1), (10, 32, 1), (4, 32, 3), (4, 64, 3)]


def test_each_mode_changes_output_when_only_the_label_changes(device):
    for mode in MODES:
        for n_classes, size, channels in CASES:
            torch.manual_seed(0)
            G = ConditionalGenerator(n_classes, 16, size, channels, 8, mode).to(device).eval()
            D = ConditionalDiscriminator(n_classes, size, channels, 8, mode).to(device).eval()
            z = torch.randn(6, 16, device=device)
            y = torch.arange(6, device=device) % n_classes
            other = (y + 1) % n_classes
            x = G(z, y)
            assert x.shape == (6, channels, size, size)
            assert D(x, y).shape == (6,)
            # Only the label changes: every sample's image and score must change, relative to their size
            # (at DCGAN init in eval mode the outputs themselves are tiny).
            assert ((G(z, other) - x).flatten(1).abs().amax(1) > 0.01 * x.flatten(1).abs().amax(1)).all(), mode
            images = torch.rand(6, channels, size, size, device=device) * 2 - 1
            assert ((D(images, other) - D(images, y)).abs() > 1e-6).all(), mode


def test_onehot_discriminator_sees_the_class_plane():
    # D(x, y) must equal the unconditional backbone applied to [x, one-hot planes] built by hand.
    D = ConditionalDiscriminator(10, 28, 1, 8, "onehot").eval()
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 4, 9])
    planes = torch.zeros(3, 10, 28, 28)
    planes[torch.arange(3), y] = 1.0
    expected = D.backbone.out(D.backbone.features(torch.cat([x, planes], 1))).flatten()
    torch.testing.assert_close(D(x, y), expected)


def test_projection_discriminator_is_eq3():
    # Miyato & Koyama 2018, eq. 3: D(x, y) - D(x, y') = <V_y - V_y', phi(x)>, phi = pooled features.
    D = ConditionalDiscriminator(4, 32, 3, 8, "projection").eval()
    with torch.no_grad():
        D.embed.weight.normal_()
    x = torch.randn(5, 3, 32, 32)
    y, y2 = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 2])
    phi = D.backbone.features(x).mean(dim=(2, 3))
    expected = ((D.embed.weight[y] - D.embed.weight[y2]) * phi).sum(1)
    torch.testing.assert_close(D(x, y) - D(x, y2), expected, rtol=1e-4, atol=1e-4)


def test_bad_labels_and_modes():
    G = ConditionalGenerator(10, 16, 28, 1, 8, "embed")
    with pytest.raises(ValueError, match="one-hot"):
        G(torch.randn(2, 16), F.one_hot(torch.tensor([1, 2]), 10).float())
    with pytest.raises(ValueError, match="0, 9"):
        G(torch.randn(2, 16), torch.tensor([1, 10]))
    with pytest.raises(ValueError, match="conditioning"):
        ConditionalDiscriminator(conditioning="concat")


def test_trains_on_the_shapes_dataset():
    from ganlib import losses
    from ganlib.data import TensorSource, shapes
    from ganlib.train import Trainer

    data = shapes(32, size=32, seed=0)
    for mode in MODES:
        G = ConditionalGenerator(4, 16, 32, 3, 8, mode)
        D = ConditionalDiscriminator(4, 32, 3, 8, mode)
        trainer = Trainer(G, D, TensorSource(data.images, data.labels, batch_size=16), progress=False,
                          d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                          device=torch.device("cpu"))
        trainer.fit(2)
        assert torch.isfinite(torch.tensor(trainer.history["d_loss"])).all()
        assert trainer.sample(4, labels=torch.tensor([0, 1, 2, 3])).shape == (4, 3, 32, 32)


def test_class_picker_logic_headless():
    from ganlib.widgets.images import ClassPicker

    torch.manual_seed(0)
    G = ConditionalGenerator(4, 16, 32, 3, 8, "onehot")
    picker = ClassPicker(G, n=4, class_names=["circle", "square", "triangle", "cross"])
    first = picker.images.clone()
    assert picker.dropdown in picker.widget.children
    picker.dropdown.value = 2
    assert picker.label == 2 and picker.images.shape == (4, 3, 32, 32)
    assert not torch.allclose(picker.images, first)  # same latents, new label, new images
    picker.static_figure(per_class=2)
    with pytest.raises(ValueError, match="label must be"):
        picker.pick(4)
