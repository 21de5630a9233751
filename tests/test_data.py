import math

import pytest
import torch

from ganlib import data
from ganlib.data.shapes import BACKGROUNDS


def test_ring_has_eight_distinct_centres_on_unit_circle():
    ring = data.toy("ring")
    assert ring.centers.shape == (8, 2) and ring.std == 0.01
    assert torch.allclose(ring.centers.norm(dim=1), torch.ones(8), atol=1e-6)
    # the linspace(0, 2pi, 8) bug would put two centres at the same place
    pairwise = torch.cdist(ring.centers, ring.centers) + torch.eye(8) * 10
    assert pairwise.min() > 0.7  # neighbours on a unit octagon are 2 sin(pi/8) = 0.765 apart


def test_grid_geometry_matches_veegan_pacgan():
    grid = data.toy("grid")
    assert grid.std == 0.05
    assert sorted(set(grid.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert grid.centers.shape == (25, 2)


def test_wgangp_geometry():
    ring = data.toy("ring_wgangp")
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 2 / 1.414), atol=1e-5)
    grid = data.toy("grid_wgangp")
    assert math.isclose(grid.centers[:, 0].max().item(), 4 / 2.828, rel_tol=1e-5)


def test_held_out_geometries_have_their_hand_computed_centres():
    grid = data.toy("grid_3x3")
    expected = torch.tensor([[x, y] for x in (-1.5, 0.0, 1.5) for y in (-1.5, 0.0, 1.5)])
    assert grid.std == 0.1 and torch.equal(grid.centers, expected)
    ring = data.toy("ring_5")
    # a regular pentagon of radius 2: cos 72 = (sqrt 5 - 1)/4, cos 144 = -(sqrt 5 + 1)/4
    c72, c144 = (math.sqrt(5) - 1) / 4, -(math.sqrt(5) + 1) / 4
    s72, s144 = math.sqrt(1 - c72**2), math.sqrt(1 - c144**2)
    expected = 2 * torch.tensor([[1, 0], [c72, s72], [c144, s144], [c144, -s144], [c72, -s72]])
    assert ring.std == 0.05 and torch.allclose(ring.centers, expected, atol=1e-6)


def test_mixture_samples_have_the_right_moments():
    grid = data.toy("grid")
    x = grid.sample(40000, generator=torch.Generator().manual_seed(0))
    nearest = torch.cdist(x, grid.centers).argmin(1)
    resid = x - grid.centers[nearest]
    assert abs(resid.std().item() - 0.05) < 0.002
    counts = torch.bincount(nearest, minlength=25).float()
    assert (counts / counts.sum() - 1 / 25).abs().max() < 0.01


def test_density_integrates_to_one_in_1d():
    g = data.gaussian_1d(1.0, 0.5)
    xs = torch.linspace(-4, 6, 20001)
    mass = g.density(xs).sum() * (xs[1] - xs[0])
    assert abs(mass.item() - 1) < 1e-4
    assert math.isclose(g.density(torch.tensor([1.0])).item(), 1 / (0.5 * math.sqrt(2 * math.pi)), rel_tol=1e-6)


def test_toy_is_deterministic_and_names_are_checked():
    roll = data.toy("swiss_roll")
    a = roll.sample(10, generator=torch.Generator().manual_seed(3))
    b = roll.sample(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (10, 2)
    with pytest.raises(ValueError, match="ring"):
        data.toy("moons")
    with pytest.raises(ValueError):
        data.toy("ring").sample(0)


def test_bundled_mnist_split_shapes_and_range():
    x, y = data.mnist()
    assert x.shape == (4000, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() == 1
    assert torch.equal(torch.bincount(y), torch.full((10,), 400))
    xh, yh = data.mnist(split="heldout")
    assert xh.shape[0] == 1000 and torch.equal(torch.bincount(yh), torch.full((10,), 100))
    # evaluations take prefixes of the held-out split: every prefix is as class-balanced as its length allows
    for n in (10, 37, 300, 555):
        counts = torch.bincount(yh[:n], minlength=10)
        assert counts.max() - counts.min() <= 1, (n, counts.tolist())
    # train and held-out are disjoint
    flat_train = {tuple(r) for r in x.flatten(1)[:, ::7].tolist()}
    assert not any(tuple(r) in flat_train for r in xh.flatten(1)[:, ::7].tolist()[:200])


def test_mnist_32_pads_with_background():
    x28, _ = data.mnist(28)
    x32, _ = data.mnist(32)
    assert x32.shape[-1] == 32
    assert torch.equal(x32[:, :, 2:30, 2:30], x28)
    assert (x32[:, :, :2] == -1).all()
    with pytest.raises(ValueError, match="28 or 32"):
        data.mnist(64)
    with pytest.raises(ValueError, match="split"):
        data.mnist(split="test")


def test_mnist_corrupt_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "mnist5k.npz").write_bytes(b"not a real archive")
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="corrupt"):
        data.mnist()
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="make_mnist5k"):
        data.mnist()


def test_shapes_are_deterministic_and_factors_are_visible():
    a, b = data.shapes(16, seed=1), data.shapes(16, seed=1)
    assert torch.equal(a.images, b.images) and a.images.shape == (16, 3, 32, 32)
    assert a.images.min() >= -1 and a.images.max() <= 1
    assert not torch.equal(a.images, data.shapes(16, seed=2).images)
    big = data.shapes(4, size=64, seed=1)
    assert big.images.shape == (4, 3, 64, 64)


def test_shape_renders_its_colour_at_its_centre_and_background_at_corner():
    f = data.sample_factors(50, generator=torch.Generator().manual_seed(0))
    img = data.render(f, 64)
    for i in range(50):
        cx, cy = int(f["x"][i] * 64), int(f["y"][i] * 64)
        centre = (img[i, :, cy, cx] + 1) / 2
        corner = (img[i, :, 0, 0] + 1) / 2
        assert torch.allclose(centre, data.PALETTE[f["colour"][i]], atol=1e-5), data.SHAPE_NAMES[f["shape"][i]]
        assert torch.allclose(corner, BACKGROUNDS[f["background"][i]], atol=1e-5)


def test_shape_area_ordering():
    # Same size r and position: areas are pi r^2 (circle), (1.7 r)^2 (square), 1.75 r^2 (triangle: base 2r,
    # height 1.75r) and 2.2 r^2 (cross: two 0.66r x 2r bars minus their overlap).
    n = 4
    f = {"shape": torch.arange(4), "colour": torch.zeros(n, dtype=torch.long), "size": torch.full((n,), 0.3),
         "x": torch.full((n,), 0.5), "y": torch.full((n,), 0.5), "background": torch.zeros(n, dtype=torch.long)}
    img = data.render(f, 128)
    fg = (img[:, 0] > 0).float().sum(dim=(1, 2))  # red channel is bright only on the shape
    r = 0.3 * 128
    assert abs(fg[0] - math.pi * r**2) / (math.pi * r**2) < 0.05
    assert abs(fg[1] - (1.7 * r) ** 2) / (1.7 * r) ** 2 < 0.05
    assert abs(fg[2] - 1.75 * r**2) / (1.75 * r**2) < 0.05
    assert abs(fg[3] - 2.2 * r**2) / (2.2 * r**2) < 0.05


def test_tensor_source_is_a_pure_function_of_index():
    x = torch.arange(10).float()[:, None]
    y = torch.arange(10)
    src = data.TensorSource(x, y, batch_size=4, seed=0)
    xb, yb = src.batch(3)
    assert torch.equal(xb[:, 0].long(), yb)
    again = data.TensorSource(x, y, batch_size=4, seed=0)
    assert torch.equal(again.batch(3)[0], xb)
    epoch0 = torch.cat([src.batch(i)[1] for i in range(2)])
    assert len(set(epoch0.tolist())) == 8  # no repeats within an epoch
    with pytest.raises(ValueError, match="larger than the dataset"):
        data.TensorSource(x, batch_size=11)
    with pytest.raises(ValueError, match="labels"):
        data.TensorSource(x, y[:3], batch_size=2)


def test_download_fails_fast_and_helpfully_offline(tmp_path, monkeypatch):
    from ganlib.data import downloads

    monkeypatch.setattr(downloads, "_online", lambda host, timeout=3.0: False)
    with pytest.raises(ConnectionError, match="ganlib.data.mnist"):
        data.download("mnist", root=tmp_path)
    with pytest.raises(ValueError, match="unknown downloadable"):
        data.download("imagenet", root=tmp_path)


def test_image_folder_errors_and_loading(tmp_path):
    from PIL import Image

    with pytest.raises(FileNotFoundError):
        data.image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        data.image_folder(tmp_path)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "red.png")
    imgs = data.image_folder(tmp_path, size=16)
    assert imgs.shape == (1, 3, 16, 16)
    assert torch.allclose(imgs[0, 0], torch.ones(16, 16)) and torch.allclose(imgs[0, 1], -torch.ones(16, 16))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        data.image_folder(tmp_path)
