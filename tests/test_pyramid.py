"""Laplacian pyramid: hand-computed levels and exact reconstruction (Burt & Adelson 1983, the pyramid itself;
Denton et al. 2015, LAPGAN, which generates its residuals)."""
import pytest
import torch

from ganlib.data import mnist, shapes
from ganlib.pyramid import downsample, gaussian_pyramid, laplacian_pyramid, reconstruct, upsample


def test_downsample_is_block_mean_by_hand():
    x = torch.tensor([[1.0, 3.0, 0.0, 0.0], [5.0, 7.0, 2.0, 2.0], [0.0, 0.0, 8.0, 0.0], [4.0, 4.0, 0.0, 0.0]])
    assert torch.equal(downsample(x.view(1, 1, 4, 4))[0, 0], torch.tensor([[4.0, 1.0], [2.0, 2.0]]))


def test_upsample_bilinear_by_hand():
    # half-pixel centres: output pixel 1 of a 2->4 row sits at input coordinate 0.25 -> 0.75 a + 0.25 b
    row = torch.tensor([[[[0.0, 4.0]]]]).expand(1, 1, 2, 2).contiguous()
    up = upsample(row)[0, 0, 0]
    assert torch.allclose(up, torch.tensor([0.0, 1.0, 3.0, 4.0]))


def test_pyramid_shapes_and_residuals():
    x = torch.randn(2, 3, 32, 32)
    pyr = laplacian_pyramid(x, 3)
    assert [tuple(p.shape[-2:]) for p in pyr] == [(32, 32), (16, 16), (8, 8)]
    gauss = gaussian_pyramid(x, 3)
    assert torch.equal(pyr[-1], gauss[-1])
    assert torch.allclose(pyr[0], x - upsample(downsample(x)))  # h_0 = I_0 - u(d(I_0))


def test_reconstruction_exact_float64():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    for levels in (1, 2, 3, 4):
        assert torch.allclose(reconstruct(laplacian_pyramid(x, levels)), x, rtol=0, atol=1e-13)


@pytest.mark.parametrize("which", ["mnist", "shapes"])
def test_reconstruction_real_images_float32(which):
    x = mnist(size=32)[0][:16] if which == "mnist" else shapes(16, size=32).images
    rec = reconstruct(laplacian_pyramid(x, 3))
    # one subtraction and one addition per level: error within a few float32 ulps of values in [-1, 1]
    assert (rec - x).abs().max().item() < 4 * torch.finfo(torch.float32).eps


def test_residuals_small_where_image_smooth():
    # a linear ramp in x: bilinear up-sampling of its block means reproduces it away from the border
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(1, 1, 32, 32).contiguous()
    h0 = laplacian_pyramid(ramp, 2)[0]
    assert h0[..., 2:-2].abs().max().item() < 1e-5
    assert h0[..., :1].abs().max().item() > 1e-3  # the border clamps, so the residual is not zero there


def test_bad_input():
    with pytest.raises(ValueError, match="halved"):
        laplacian_pyramid(torch.randn(1, 1, 12, 12), 4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        laplacian_pyramid(torch.randn(12, 12), 2)
    with pytest.raises(ValueError, match="fit"):
        reconstruct([torch.randn(1, 1, 32, 32), torch.randn(1, 1, 8, 8)])


def test_power_spectrum_and_nyquist_fraction():
    from ganlib.pyramid import nyquist_fraction, power_spectrum

    i = torch.arange(8)
    checker = ((i[:, None] + i[None, :]) % 2 * 2 - 1).float().view(1, 1, 8, 8)
    assert nyquist_fraction(checker) == pytest.approx(1.0)
    stripes = (i % 2 * 2 - 1).float().view(1, 1, 1, 8).expand(1, 1, 8, 8)
    assert nyquist_fraction(stripes) == pytest.approx(1.0)
    smooth = upsample(torch.randn(16, 1, 4, 4))  # bilinear up-sampling leaves little at f = 1/2
    assert nyquist_fraction(smooth) < 0.05
    nearest = torch.randn(16, 1, 4, 4).repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert nyquist_fraction(nearest) < 1e-10  # a 2x2 box has an exact zero at f = 1/2
    # Parseval: total power equals N * sum of squares of the mean-removed image
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    xc = x - x.mean()
    assert power_spectrum(x).sum().item() == pytest.approx(64 * xc.pow(2).sum().item(), rel=1e-5)
