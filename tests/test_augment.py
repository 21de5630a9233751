"""DiffAugment: each operation checked on synthetic images against what it must do, plus seeding and gradients."""
import pytest
import torch

from ganlib import augment


def _square(n=1, size=16, top=4, left=5, side=4, channels=1):
    x = -torch.ones(n, channels, size, size)
    x[:, :, top:top + side, left:left + side] = 1.0
    return x


@pytest.mark.parametrize("dy,dx", [(2, 0), (0, -3), (-1, 2), (3, 3)])
def test_translation_moves_a_square_and_fills_with_zeros(dy, dx):
    x = _square()
    out = augment.translate(x, torch.tensor([dy]), torch.tensor([dx]))
    # independent construction: roll, then zero the rows/columns that wrapped around
    expected = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0:
        expected[:, :, :dy] = 0
    elif dy < 0:
        expected[:, :, dy:] = 0
    if dx > 0:
        expected[:, :, :, :dx] = 0
    elif dx < 0:
        expected[:, :, :, dx:] = 0
    assert torch.equal(out, expected)
    bright = (out == 1).nonzero()[:, 2:]
    assert bright.min(0).values.tolist() == [4 + dy, 5 + dx]  # the square's corner moved by (dy, dx)


def test_random_translation_stays_within_an_eighth():
    x = _square(n=200, size=32, top=14, left=14, side=4)
    out = augment.random_translation(x, torch.Generator().manual_seed(0))
    shifts = []
    for img in out:
        corner = (img[0] == 1).nonzero().min(0).values
        shifts.append((corner - 14).tolist())
    shifts = torch.tensor(shifts)
    assert shifts.abs().max() == 4  # 32 / 8, and the extreme value is reached in 200 draws
    assert len({tuple(s) for s in shifts.tolist()}) > 30  # per-image draws, not one shift for the batch


def test_colour_ops_change_only_colour_statistics():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    b = torch.tensor([0.3, -0.2, 0.5]).view(3, 1, 1, 1)
    out = augment.brightness(x, b)
    assert torch.allclose(out - out.mean(dim=(1, 2, 3), keepdim=True), x - x.mean(dim=(1, 2, 3), keepdim=True), atol=1e-6)
    s = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1, 1)
    out = augment.saturation(x, s)
    assert torch.allclose(out.mean(1), x.mean(1), atol=1e-6)  # the grey level of every pixel is kept
    assert torch.allclose(out[0], x[0].mean(0, keepdim=True).expand(3, -1, -1), atol=1e-6)  # s = 0: grey image
    assert torch.allclose(out[1], x[1], atol=1e-6)
    c = torch.tensor([0.5, 1.0, 1.5]).view(3, 1, 1, 1)
    out = augment.contrast(x, c)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    assert torch.allclose(out.std(dim=(1, 2, 3)), x.std(dim=(1, 2, 3)) * c.flatten(), atol=1e-5)
    # no colour op moves anything: the rank order of pixels inside each channel of a 1-channel image is kept
    gray = torch.rand(4, 1, 8, 8)
    out = augment.random_color(gray, torch.Generator().manual_seed(1))
    for a, o in zip(gray, out):
        assert torch.equal(a.flatten().argsort(), o.flatten().argsort())


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(1, 2, 16, 16)
    out = augment.cutout(x, torch.tensor([3]), torch.tensor([5]), size=8)
    assert torch.equal(out[0, :, 3:11, 5:13], torch.zeros(2, 8, 8))
    assert int((out == 0).sum()) == 2 * 64
    clipped = augment.cutout(x, torch.tensor([-4]), torch.tensor([12]), size=8)  # hangs over two borders
    assert int((clipped[0, 0] == 0).sum()) == 4 * 4
    many = augment.random_cutout(torch.ones(300, 1, 16, 16), torch.Generator().manual_seed(0))
    holes = (many == 0).flatten(1).sum(1)
    assert holes.max() == 64 and holes.min() >= 16 and (holes == 64).float().mean() > 0.2


def test_same_seed_same_output_and_gradients_flow():
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    a = augment.DiffAugment(seed=7)(x)
    b = augment.DiffAugment(seed=7)(x)
    c = augment.DiffAugment(seed=8)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # without the colour ops (whose means touch every pixel) a pixel cut out or shifted out of view gets no
    # gradient and one still in view gets exactly 1
    y = torch.rand(6, 3, 16, 16, requires_grad=True)
    augment.DiffAugment("translation,cutout", seed=7)(y).sum().backward()
    assert set(y.grad.unique().tolist()) == {0.0, 1.0}


def test_state_dict_resumes_the_stream():
    aug = augment.DiffAugment(seed=3)
    x = torch.rand(4, 1, 8, 8)
    aug(x)
    state = aug.state_dict()
    expected = aug(x)
    other = augment.DiffAugment(seed=99)
    other.load_state_dict(state)
    assert torch.equal(other(x), expected)


def test_off_is_identity_and_bad_policies_are_refused():
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(augment.diff_augment(x, ""), x) and torch.equal(augment.diff_augment(x, None), x)
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        augment.DiffAugment("color,flip")
    with pytest.raises(ValueError, match="augment=None"):
        augment.DiffAugment("")
    with pytest.raises(ValueError, match="float images"):
        augment.diff_augment(torch.zeros(2, 8, 8))


# -- through the Trainer --------------------------------------------------------------------------------

def _image_trainer(tmp_path=None, augment_policy="translation,cutout", seed=0):
    from ganlib import losses
    from ganlib.data import TensorSource
    from ganlib.models.dcgan import Discriminator, Generator
    from ganlib.train import Trainer

    torch.manual_seed(seed)
    G, D = Generator(z_dim=8, image_size=16, channels=1, width=4), Discriminator(image_size=16, channels=1, width=4)
    reals = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    seen = []
    D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    aug = augment.DiffAugment(augment_policy, seed=1) if augment_policy else None
    trainer = Trainer(G, D, TensorSource(reals, batch_size=8, seed=0), d_loss=losses.discriminator_bce,
                      g_loss=losses.generator_nonsaturating, augment=aug, progress=False, device=torch.device("cpu"),
                      checkpoint_path=None if tmp_path is None else tmp_path / "aug.pt")
    return trainer, reals, seen


def test_trainer_augments_what_d_sees_and_only_then():
    trainer, reals, seen = _image_trainer(augment_policy=None)
    trainer.fit(1)
    first_batch = trainer.data.batch(0)
    assert torch.equal(seen[0], first_batch)  # off: D sees the real batch as drawn
    trainer, reals, seen = _image_trainer()
    trainer.fit(1)
    assert not torch.equal(seen[0], first_batch)  # on: shifted and cut out
    assert (seen[0] == 0).flatten(1).sum(1).min() >= 16  # every real got a hole of at least a clipped 4x4 square
    assert (seen[1] == 0).flatten(1).sum(1).min() >= 16 and (seen[2] == 0).flatten(1).sum(1).min() >= 16  # fakes too


def test_augmented_run_resumes_exactly(tmp_path):
    straight, _, _ = _image_trainer()
    straight.fit(4)
    first, _, _ = _image_trainer(tmp_path)
    first.fit(2)
    resumed, _, _ = _image_trainer(tmp_path, seed=5)  # other init: everything must come from the checkpoint
    resumed.resume(tmp_path / "aug.pt")
    resumed.fit(4)
    for a, b in zip(straight.G.parameters(), resumed.G.parameters()):
        assert torch.equal(a, b)
    from ganlib.train import Trainer
    with pytest.raises(TypeError, match="augment must be a function"):
        Trainer(straight.G, straight.D, straight.data, d_loss=None, g_loss=None, augment="color")
